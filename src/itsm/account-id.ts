// The one rule for account ids, shared by the API routes, the `--token T:ACCOUNT` flag, the
// webhook receiver and the engine's admin routes: a positive decimal integer, digits only (no
// sign, no spaces, no leading zero), at most Number.MAX_SAFE_INTEGER. One rule everywhere, so
// that an id the API accepts and notifies is always an id the receiver and the engine accept.

/** What an account id must be, for error messages. */
export const ACCOUNT_ID_RULE = `a positive whole number from 1 to ${Number.MAX_SAFE_INTEGER}, written in digits with no sign, spaces or leading zero`;

const DIGITS = /^[1-9][0-9]{0,15}$/;

/**
 * The account id in `value`, or null when it is not one. Strings (URL paths, query strings, form
 * bodies, flags) must be spelled as the rule says. JSON numbers are judged by value: a JSON parser
 * does not keep the spelling, so `1e3` is the number 1000 and `1.0` is 1, while `1.5`, `0`, `-1`
 * and anything past 2^53 - 1 (which JSON.parse may already have rounded) are refused.
 */
export function parseAccountId(value: unknown): number | null {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 1 ? value : null;
  }
  if (typeof value === 'string' && DIGITS.test(value)) {
    const id = Number(value);
    return Number.isSafeInteger(id) ? id : null;
  }
  return null;
}

/** `what must be <rule>, got <value>`: the message of every refusal of an account id. */
export function describeBadAccountId(what: string, value: unknown): string {
  const shown = Array.isArray(value)
    ? 'an array'
    : value === undefined
      ? 'nothing'
      : value !== null && typeof value === 'object'
        ? 'an object'
        : (JSON.stringify(value) ?? String(value));
  return `${what} must be ${ACCOUNT_ID_RULE}, got ${shown.length > 40 ? `${shown.slice(0, 40)}...` : shown}`;
}

/**
 * The ids of a list of accounts given by a user (`--account 1 --account 1`, `"accounts": [1, 1]`),
 * each once, in the order first given: an account named twice is still one account, and reading
 * it twice would count its events twice.
 */
export function distinctAccountIds(ids: readonly number[]): number[] {
  return [...new Set(ids)];
}
