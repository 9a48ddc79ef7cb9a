// Authentication of the engine's admin endpoints: the caller presents the engine's API key as
// `Authorization: APIKey <key>` or `Bearer <key>` (scheme case-insensitive), matched in constant
// time against every current key, so a key rotation can keep the old key valid for a while.
import type { MiddlewareHandler } from 'hono';
import { timingSafeEqual } from '../itsm/signature.js';
import { EngineHttpError, errorResponse } from './errors.js';

const EXPECTED = 'send "Authorization: APIKey <engine API key>" (or "Bearer <engine API key>")';

function unauthorized(message: string): Response {
  // The response never repeats what was sent: an almost-right key must not show up in a proxy log.
  return errorResponse(
    new EngineHttpError(401, 'unauthorized', `${message}: ${EXPECTED}`, {
      'WWW-Authenticate': 'APIKey',
    }),
  );
}

/** True when `candidate` equals one of `keys`; every key is compared, so timing does not tell which. */
function matchesAny(candidate: string, keys: readonly string[]): boolean {
  let matched = false;
  for (const key of keys) {
    // An empty configured key must never let an empty credential in.
    if (key !== '' && timingSafeEqual(candidate, key)) matched = true;
  }
  return matched;
}

/**
 * Middleware for admin routes. `keys` is read on every request, so a configuration reload takes
 * effect at once. Answers 401 itself rather than throwing, so it works under any `onError`.
 */
export function requireApiKey(keys: () => readonly string[]): MiddlewareHandler {
  return async (c, next) => {
    const header = c.req.header('Authorization');
    if (!header?.trim()) return unauthorized('missing Authorization header');
    const match = /^\s*(\S+)\s+(.+?)\s*$/.exec(header);
    const scheme = match?.[1]?.toLowerCase();
    if (scheme !== 'apikey' && scheme !== 'bearer') {
      return unauthorized('unsupported Authorization scheme');
    }
    if (!matchesAny(match?.[2] ?? '', keys())) return unauthorized('the API key is not valid');
    await next();
  };
}
