// The flags that point a server at a real ServiceNow instance (`itsm-server --servicenow URL`,
// and the engine all-in-one, `serve --servicenow URL`: one table, shared by both commands):
// the instance, Basic or OAuth credentials (never printed: no defaults shown, never logged),
// the account it is served as, the change feed's poll interval and the push secret. The Worker
// (runtime/worker.ts) reads the same settings from its vars and secrets of the same names.
import { parseInstanceUrl, type ServiceNowAuth } from '../servicenow/client.js';
import { type FlagSpec, type FlagValues, positiveInt, UsageError } from './command.js';

export const serviceNowFlags: FlagSpec[] = [
  {
    name: 'servicenow',
    env: 'ITSM_SERVICENOW_URL',
    type: 'string',
    placeholder: 'URL',
    description:
      'serve /v1 over this ServiceNow instance (https://dev12345.service-now.com) instead of the embedded store; the local --db keeps only events, webhooks, idempotency keys and the feed',
  },
  {
    name: 'sn-username',
    env: 'ITSM_SN_USERNAME',
    type: 'string',
    placeholder: 'NAME',
    description: 'the integration user of the instance (Basic auth, or the OAuth password grant)',
  },
  {
    name: 'sn-password',
    env: 'ITSM_SN_PASSWORD',
    type: 'string',
    placeholder: 'PASSWORD',
    description: "that user's password (prefer the env twin: a flag shows in the process list)",
  },
  {
    name: 'sn-client-id',
    env: 'ITSM_SN_CLIENT_ID',
    type: 'string',
    placeholder: 'ID',
    description:
      'OAuth client id of the instance (with --sn-client-secret: OAuth instead of Basic)',
  },
  {
    name: 'sn-client-secret',
    env: 'ITSM_SN_CLIENT_SECRET',
    type: 'string',
    placeholder: 'SECRET',
    description: 'OAuth client secret',
  },
  {
    name: 'sn-account',
    env: 'ITSM_SN_ACCOUNT',
    type: 'string',
    default: '1',
    placeholder: 'N',
    description: 'the account id /v1 serves the instance as',
  },
  {
    name: 'poll-interval',
    env: 'ITSM_SN_POLL_MS',
    type: 'string',
    default: '5000',
    placeholder: 'MS',
    description: 'how often the change feed polls the instance (0: only on push)',
  },
  {
    name: 'sn-push-secret',
    env: 'ITSM_SN_PUSH_SECRET',
    type: 'string',
    placeholder: 'SECRET',
    description:
      'turns on POST /servicenow/push (Authorization: Bearer SECRET) for a Business Rule',
  },
];

const CREDENTIAL_FLAGS = ['sn-username', 'sn-password', 'sn-client-id', 'sn-client-secret'];

/** The connector settings both runtimes read from these names. */
export interface ServiceNowSettings {
  instanceUrl: string;
  auth: ServiceNowAuth;
  account: number;
  /** The command line only: the Worker's cron trigger polls instead. */
  pollIntervalMs?: number;
  pushSecret?: string;
}

/** A connector setting is missing or invalid; `flag` names it (its env twin: envOfFlag). */
export class ServiceNowSettingError extends UsageError {
  override name = 'ServiceNowSettingError';
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(message);
  }
}

/** The environment name of a flag of the table. */
export function envOfFlag(flag: string): string {
  const env = serviceNowFlags.find((spec) => spec.name === flag)?.env;
  if (!env) throw new Error(`no ServiceNow flag ${flag}`);
  return env;
}

/**
 * The connector settings of the flags, or undefined without --servicenow. `naming` says how
 * messages name a setting: `flags` (the command line: `--sn-username`) or `env` (the Worker,
 * whose values are the environment twins: `ITSM_SN_USERNAME`); the rules are the same.
 */
export function serviceNowFromFlags(
  values: FlagValues,
  naming: 'flags' | 'env' = 'flags',
): ServiceNowSettings | undefined {
  const flags = naming === 'flags';
  const n = (flag: string) => (flags ? `--${flag}` : envOfFlag(flag));
  const text = (name: string) => {
    const value = values[name];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const url = text('servicenow');
  if (url === undefined) {
    const stray = [...CREDENTIAL_FLAGS, 'sn-push-secret'].filter((f) => text(f) !== undefined);
    if (stray.length > 0) {
      throw new ServiceNowSettingError(
        stray[0] as string,
        `${stray.map(n).join(', ')} only apply with ${n('servicenow')}${flags ? ' URL' : ''} (the instance to serve)`,
      );
    }
    return undefined;
  }
  let instanceUrl: string;
  try {
    instanceUrl = parseInstanceUrl(url).origin;
  } catch (error) {
    throw new ServiceNowSettingError(
      'servicenow',
      `${n('servicenow')}: ${(error as Error).message}`,
    );
  }
  const username = text('sn-username');
  const password = text('sn-password');
  if (username === undefined || password === undefined) {
    throw new ServiceNowSettingError(
      username === undefined ? 'sn-username' : 'sn-password',
      flags
        ? '--servicenow needs the integration user: --sn-username NAME and --sn-password (or ITSM_SN_USERNAME and ITSM_SN_PASSWORD)'
        : `${n('servicenow')} needs the integration user: ${n('sn-username')} and ${n('sn-password')}`,
    );
  }
  const clientId = text('sn-client-id');
  const clientSecret = text('sn-client-secret');
  if ((clientId === undefined) !== (clientSecret === undefined)) {
    throw new ServiceNowSettingError(
      clientId === undefined ? 'sn-client-id' : 'sn-client-secret',
      `OAuth needs both ${n('sn-client-id')} and ${n('sn-client-secret')} (leave both out for Basic auth)`,
    );
  }
  const auth: ServiceNowAuth =
    clientId !== undefined && clientSecret !== undefined
      ? { kind: 'oauth', clientId, clientSecret, username, password }
      : { kind: 'basic', username, password };
  const pushSecret = text('sn-push-secret');
  if (pushSecret !== undefined && pushSecret.length < 16) {
    throw new ServiceNowSettingError(
      'sn-push-secret',
      `${n('sn-push-secret')} must be at least 16 characters (it guards the push endpoint)`,
    );
  }
  const whole = (flag: string, fallback: string, min: number) => {
    try {
      return positiveInt(flag, String(values[flag] ?? fallback), min);
    } catch (error) {
      throw new ServiceNowSettingError(
        flag,
        (error as Error).message.replace(`--${flag}`, n(flag)),
      );
    }
  };
  return {
    instanceUrl,
    auth,
    account: whole('sn-account', '1', 1),
    ...(flags && { pollIntervalMs: whole('poll-interval', '5000', 0) }),
    ...(pushSecret !== undefined && { pushSecret }),
  };
}
