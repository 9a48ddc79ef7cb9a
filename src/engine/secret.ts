// Named secrets in rules: `{secret: PAGER_TOKEN}` inside an http action's url, headers or body
// (anywhere a value is templated there), read from `ITSM_SECRET_PAGER_TOKEN` in the environment
// (Node) or the Worker's secret of that name. The prefix is the point: a rule file can only ever
// read variables made for it, never the engine's own credentials (ITSM_API_KEY) or anything else
// of the process. This module owns the reference syntax and where it may stand, the names a rule
// set needs, and the life of a value: planning puts an unguessable marker where the value goes
// (plans, run records and `test` output hold markers and names only), the value replaces the
// marker at the moment of the HTTP call, and any text echoed back from that call is redacted by
// value before it is recorded or logged.
import { operatorOf } from './expression.js';
import type { Rule } from './rule.js';

export const SECRET_NAME_PATTERN = /^[A-Z][A-Z0-9_]*$/;
/** The environment variable (Node) or Worker secret a name is read from: ITSM_SECRET_<NAME>. */
export const SECRET_ENV_PREFIX = 'ITSM_SECRET_';
/** The context root a compiled secret reference reads its marker from; rules cannot name it. */
export const SECRET_ROOT = '$secret';

/** Reads a secret's value by name; undefined (or empty) when it is not set. */
export type SecretLookup = (name: string) => string | undefined;

export function secretVariable(name: string): string {
  return `${SECRET_ENV_PREFIX}${name}`;
}

/** A lookup over an environment (process.env, a Worker's env): ITSM_SECRET_<NAME>, non-empty. */
export function secretsFromEnv(env: Readonly<Record<string, unknown>>): SecretLookup {
  return (name) => {
    const value = env[secretVariable(name)];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
}

/** `{secret: ...}`: an object whose only key is `secret` (its name is checked at load time). */
export function isSecretRef(node: unknown): node is { secret: unknown } {
  return operatorOf(node) === 'secret';
}

// ---------------------------------------------------------------------------------------------
// Load time

export interface SecretProblem {
  path: PropertyKey[];
  message: string;
}

const HTTP_PARTS = new Set(['url', 'headers', 'body']);

/** Every misplaced or misnamed secret reference in a rule file's content. */
export function secretProblems(source: unknown): SecretProblem[] {
  const problems: SecretProblem[] = [];
  const walk = (node: unknown, path: PropertyKey[]) => {
    if (isSecretRef(node)) {
      const inHttp =
        path[0] === 'then' && path[2] === 'http' && HTTP_PARTS.has(String(path[3] ?? ''));
      if (!inHttp) {
        problems.push({
          path,
          message:
            'secrets may only be used in http actions (url, headers, body); anywhere else their value would end up in conditions, objects or run records',
        });
      } else if (typeof node.secret !== 'string' || !SECRET_NAME_PATTERN.test(node.secret)) {
        problems.push({
          path: [...path, 'secret'],
          message: `expected a secret name in capitals, digits and _ starting with a letter, such as PAGER_TOKEN (read from ${SECRET_ENV_PREFIX}PAGER_TOKEN), got ${JSON.stringify(node.secret) ?? 'nothing'}`,
        });
      }
      return;
    }
    if (Array.isArray(node)) {
      for (const [i, item] of node.entries()) walk(item, [...path, i]);
    } else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) walk(value, [...path, key]);
    }
  };
  walk(source, []);
  return problems;
}

const namesCache = new WeakMap<object, string[]>();

/** The secret names an expression or template refers to, in order of first use. */
export function secretNamesIn(node: unknown): string[] {
  if (node === null || typeof node !== 'object') return [];
  const cached = namesCache.get(node);
  if (cached) return cached;
  const names = new Set<string>();
  const walk = (value: unknown) => {
    if (isSecretRef(value)) {
      if (typeof value.secret === 'string') names.add(value.secret);
    } else if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(node);
  const found = [...names];
  namesCache.set(node, found);
  return found;
}

/**
 * The expression with each `{secret: NAME}` read from the context's SECRET_ROOT instead, where
 * planning puts the marker; the same object when it holds no reference.
 */
export function withSecretReads(node: unknown): unknown {
  if (secretNamesIn(node).length === 0) return node;
  if (isSecretRef(node)) return { var: `${SECRET_ROOT}.${String(node.secret)}` };
  if (Array.isArray(node)) return node.map(withSecretReads);
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node).map(([key, value]) => [key, withSecretReads(value)]),
    );
  }
  return node;
}

export interface RequiredSecret {
  name: string;
  variable: string;
  /** The enabled rules that use it, as `id (file)`. */
  rules: string[];
}

/** The secrets the enabled rules of a set use, by name (a disabled rule never calls out). */
export function requiredSecrets(rules: readonly Rule[]): RequiredSecret[] {
  const byName = new Map<string, RequiredSecret>();
  for (const rule of rules) {
    if (!rule.enabled) continue;
    for (const name of secretNamesIn(rule.actions)) {
      let entry = byName.get(name);
      if (!entry) {
        entry = { name, variable: secretVariable(name), rules: [] };
        byName.set(name, entry);
      }
      entry.rules.push(`${rule.id} (${rule.file})`);
    }
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** One sentence per secret the rules use that `lookup` does not have: rule, secret, variable. */
export function missingSecrets(rules: readonly Rule[], lookup: SecretLookup): string[] {
  return requiredSecrets(rules)
    .filter((secret) => lookup(secret.name) === undefined)
    .map(
      (secret) =>
        `${secret.rules.join(', ')} use${secret.rules.length === 1 ? 's' : ''} the secret ${secret.name}, which is not set: set ${secret.variable}`,
    );
}

// ---------------------------------------------------------------------------------------------
// Plans and calls

/** Marker -> secret name, as an http call of a plan keeps them. */
export type SecretMarkers = Record<string, string>;

/**
 * A marker per name for one call, with 96 random bits in it: text that an object's fields (which
 * templates copy into the call) cannot contain by chance or on purpose, so that only the rule's
 * own references are ever replaced by values. Letters, digits and _ only, so that it passes
 * through URLs, header values and JSON unchanged.
 */
export function createMarkers(names: readonly string[]): {
  markers: SecretMarkers;
  byName: Record<string, string>;
} {
  const markers: SecretMarkers = {};
  const byName: Record<string, string> = {};
  for (const name of names) {
    const nonce = Array.from(crypto.getRandomValues(new Uint8Array(12)), (byte) =>
      byte.toString(16).padStart(2, '0'),
    ).join('');
    const marker = `itsm_secret_${nonce}_${name}`;
    markers[marker] = name;
    byName[name] = marker;
  }
  return { markers, byName };
}

function replaceMarkers(
  text: string,
  markers: SecretMarkers,
  by: (name: string) => string,
): string {
  let out = text;
  for (const [marker, name] of Object.entries(markers)) {
    // Case-insensitive: a URL parser writes a host name in lower case.
    out = out.replace(new RegExp(marker, 'gi'), () => by(name));
  }
  return out;
}

/** Text as people see it: each marker written `[secret NAME]`. */
export function maskSecrets(text: string, markers: SecretMarkers | undefined): string {
  return markers ? replaceMarkers(text, markers, (name) => `[secret ${name}]`) : text;
}

/**
 * The value with every marker in its strings replaced by the secret's value; `lookup` answers
 * undefined for a secret that is not set, and the call cannot be made: its name is returned.
 */
export function revealSecrets<T>(
  value: T,
  markers: SecretMarkers | undefined,
  lookup: SecretLookup,
): { value: T; missing: string | null } {
  if (!markers || Object.keys(markers).length === 0) return { value, missing: null };
  for (const name of Object.values(markers)) {
    if (lookup(name) === undefined) return { value, missing: name };
  }
  const walk = (node: unknown): unknown => {
    if (typeof node === 'string')
      return replaceMarkers(node, markers, (name) => lookup(name) ?? '');
    if (Array.isArray(node)) return node.map(walk);
    if (node !== null && typeof node === 'object') {
      return Object.fromEntries(Object.entries(node).map(([key, item]) => [key, walk(item)]));
    }
    return node;
  };
  return { value: walk(value) as T, missing: null };
}

/** Text with every value of the call's secrets written `[secret NAME]` (what a host echoed). */
export function redactSecrets(
  text: string,
  markers: SecretMarkers | undefined,
  lookup: SecretLookup,
): string {
  if (!markers) return text;
  let out = text;
  for (const name of new Set(Object.values(markers))) {
    const value = lookup(name);
    if (value === undefined || value === '') continue;
    out = out.split(value).join(`[secret ${name}]`);
    // A value may come back percent-encoded (quoted in a URL).
    const encoded = encodeURIComponent(value);
    if (encoded !== value) out = out.split(encoded).join(`[secret ${name}]`);
  }
  return out;
}
