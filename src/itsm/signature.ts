// Webhook signatures: `X-Kloudless-Signature` is the standard Base64 of HMAC-SHA256 over the exact
// raw body bytes, keyed with the application API key. WebCrypto only, so the same code signs in
// the embedded server and verifies in the receiver on Node and on Workers.

const encoder = new TextEncoder();

function toBytes(body: string | Uint8Array): Uint8Array<ArrayBuffer> {
  // TextEncoder always returns a fresh ArrayBuffer; the Workers types only say ArrayBufferLike.
  return typeof body === 'string'
    ? (encoder.encode(body) as Uint8Array<ArrayBuffer>)
    : new Uint8Array(body);
}

// Importing a key costs about as much as the HMAC itself, and a process uses one or two keys for
// its whole life (the API key, an older one during a rotation): import each once. Bounded so
// that a caller passing ever-new keys cannot grow it without end.
type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
const importedKeys = new Map<string, Promise<HmacKey>>();
const MAX_IMPORTED_KEYS = 16;

function hmacKey(key: string): Promise<HmacKey> {
  let imported = importedKeys.get(key);
  if (!imported) {
    if (importedKeys.size >= MAX_IMPORTED_KEYS) importedKeys.clear();
    imported = crypto.subtle.importKey(
      'raw',
      encoder.encode(key),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    );
    importedKeys.set(key, imported);
    // A failed import is not kept: the next call tries again.
    imported.catch(() => importedKeys.delete(key));
  }
  return imported;
}

/** The header of a webhook notification that carries its body's signature. */
export const SIGNATURE_HEADER = 'X-Kloudless-Signature';

export function bytesToBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Standard Base64 with padding; null when `text` is not exactly that. */
export function base64ToBytes(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return null;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The `X-Kloudless-Signature` value for `body` under `key`. */
export async function signBody(body: string | Uint8Array, key: string): Promise<string> {
  const mac = await crypto.subtle.sign('HMAC', await hmacKey(key), toBytes(body));
  return bytesToBase64(new Uint8Array(mac));
}

/**
 * True when `signature` is a valid signature of `body` under any of `keys` (several keys allow
 * rotation). The comparison is WebCrypto's HMAC verify, which is constant time, never a compare
 * of strings or bytes here; and every key is tried, so the time does not tell which one matched.
 */
export async function verifySignature(
  body: string | Uint8Array,
  signature: string | null | undefined,
  keys: readonly string[],
): Promise<boolean> {
  if (!signature) return false;
  const expected = base64ToBytes(signature.trim());
  if (expected?.length !== 32) return false;
  const bytes = toBytes(body);
  let valid = false;
  for (const key of keys) {
    if (await crypto.subtle.verify('HMAC', await hmacKey(key), expected, bytes)) valid = true;
  }
  return valid;
}

/** Hex SHA-256 of a string: request fingerprints for Idempotency-Key. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * signBody's contract (standard Base64 of HMAC-SHA256 over the body's bytes, UTF-8 for a string),
 * answering at once, as node:crypto can, or later, as WebCrypto does. The embedded server takes
 * one so that Node can sign without WebCrypto's round trip through the thread pool.
 */
export type BodySigner = (body: string | Uint8Array, key: string) => string | Promise<string>;

/** sha256Hex's contract (lower-case hex SHA-256 of the text's UTF-8 bytes), at once or later. */
export type TextHasher = (text: string) => string | Promise<string>;

/** Compares two strings in time that depends only on their lengths, not on where they differ. */
export function timingSafeEqual(a: string, b: string): boolean {
  const left = encoder.encode(a);
  const right = encoder.encode(b);
  let diff = left.length ^ right.length;
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    diff |= (left[i] ?? 0) ^ (right[i] ?? 0);
  }
  return diff === 0;
}
