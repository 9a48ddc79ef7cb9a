// Building blocks of the command line: the flag table each command declares (with environment
// twins and defaults), the usage error (exit 2) and small flag parsers shared by the commands.

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface FlagSpec {
  name: string;
  env?: string;
  /** An older name of `env`, still read (below `env`) with a warning on stderr. */
  deprecatedEnv?: string;
  type: 'string' | 'boolean';
  multiple?: boolean;
  default?: string;
  placeholder?: string;
  description: string;
}

export interface Command {
  name: string;
  summary: string;
  flags: FlagSpec[];
  /** A path given without its flag (`itsm-rules check rules/x.yaml`): the value of that flag. */
  positional?: { flag: string; placeholder: string };
  run(values: FlagValues): Promise<number>;
}

export type FlagValues = Record<string, string | string[] | boolean | undefined>;

export function positiveInt(
  flag: string,
  text: string,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${flag} must be a whole number ${range}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

export const list = (value: FlagValues[string]): string[] =>
  (Array.isArray(value) ? value : typeof value === 'string' ? [value] : []).filter(Boolean);

/** Whether `host` is a loopback address: there, a development key may stand in for --api-key. */
export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || host.startsWith('127.');
