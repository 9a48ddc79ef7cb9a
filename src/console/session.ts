// The console's sessions, stateless: signing in with the API key sets a cookie holding an expiry
// and a random id, signed with HMAC-SHA256 under a secret derived from the key. Nothing is
// stored, so it works the same on Node and on Workers (no table, no sticky isolate). A key
// rotation keeps sessions signed under an older key valid while that key is accepted; dropping a
// key ends its sessions. The CSRF token of a session is an HMAC of its id, so forms carry it and
// the server checks it without storing it either.
import { signBody, timingSafeEqual } from '../itsm/signature.js';

export const SESSION_COOKIE = 'itsm_console';
/** Eight hours: a working day, after which the key is asked for again. */
export const DEFAULT_SESSION_TTL_MS = 8 * 60 * 60 * 1000;

const VERSION = 'v1';
/** What the session secret is derived for, so that it never equals a webhook signature. */
const PURPOSE = 'itsm-rules console session';

export interface Session {
  id: string;
  expiresAt: number;
  /** The token forms send back (`_csrf`) on every state-changing request. */
  csrf: string;
}

function base64Url(text: string): string {
  return text.replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** The secret a key signs sessions with: never the key itself, so a cookie says nothing of it. */
function secretOf(key: string): Promise<string> {
  return signBody(PURPOSE, key);
}

async function mac(key: string, text: string): Promise<string> {
  return base64Url(await signBody(text, await secretOf(key)));
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18));
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return base64Url(btoa(binary));
}

/** A new session signed with `key` (the current API key), and its cookie value. */
export async function createSession(
  key: string,
  now: number,
  ttlMs: number,
): Promise<{ session: Session; value: string }> {
  const id = randomId();
  const expiresAt = now + ttlMs;
  const payload = `${VERSION}.${expiresAt}.${id}`;
  return {
    session: { id, expiresAt, csrf: await mac(key, `csrf.${id}`) },
    value: `${payload}.${await mac(key, payload)}`,
  };
}

/**
 * The session a cookie value stands for, or why it does not: `invalid` (not signed by any of
 * `keys`, or not a session at all) or `expired`.
 */
export async function readSession(
  value: string,
  keys: readonly string[],
  now: number,
): Promise<Session | 'invalid' | 'expired'> {
  const match = /^v1\.(\d{1,16})\.([A-Za-z0-9_-]{16,64})\.([A-Za-z0-9_-]{43})$/.exec(value);
  if (!match) return 'invalid';
  const [, expiry, id] = match as unknown as [string, string, string, string];
  const payload = `${VERSION}.${expiry}.${id}`;
  const signature = match[3] as string;
  for (const key of keys) {
    // An empty configured key must never sign anything that is accepted.
    if (key === '') continue;
    if (!timingSafeEqual(await mac(key, payload), signature)) continue;
    const expiresAt = Number(expiry);
    if (expiresAt <= now) return 'expired';
    return { id, expiresAt, csrf: await mac(key, `csrf.${id}`) };
  }
  return 'invalid';
}

/** The Set-Cookie value of a session (or, with `value` null, the one that removes it). */
export function sessionCookie(
  value: string | null,
  options: { secure: boolean; maxAgeSeconds: number },
): string {
  const parts = [
    `${SESSION_COOKIE}=${value ?? ''}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${value === null ? 0 : Math.max(1, Math.floor(options.maxAgeSeconds))}`,
  ];
  if (options.secure) parts.push('Secure');
  return parts.join('; ');
}

/** The value of the session cookie in a Cookie header, if any. */
export function sessionCookieOf(header: string | undefined): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === SESSION_COOKIE) return part.slice(at + 1).trim();
  }
  return null;
}
