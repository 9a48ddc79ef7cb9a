// The flags that point a server at a real ServiceNow instance (`itsm-server --servicenow URL`,
// and the engine all-in-one, `serve --servicenow URL`: one table, shared by both commands):
// the instance, Basic or OAuth credentials (never printed: no defaults shown, never logged),
// the account it is served as, the change feed's poll interval and the push secret.
import { parseInstanceUrl, type ServiceNowAuth } from '../servicenow/client.js';
import { type FlagSpec, type FlagValues, positiveInt, UsageError } from './command.js';
import type { ServiceNowServeOptions } from './node.js';

export const serviceNowFlags: FlagSpec[] = [
  {
    name: 'servicenow',
    env: 'ITSM_SERVICENOW_URL',
    type: 'string',
    placeholder: 'URL',
    description:
      'serve /v1 over this ServiceNow instance (https://dev12345.service-now.com) instead of the\nembedded store; the local --db keeps only events, webhooks, idempotency keys and the feed',
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

/** The connector settings of the flags, or undefined without --servicenow. */
export function serviceNowFromFlags(values: FlagValues): ServiceNowServeOptions | undefined {
  const text = (name: string) => {
    const value = values[name];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  const url = text('servicenow');
  if (url === undefined) {
    const stray = [...CREDENTIAL_FLAGS, 'sn-push-secret'].filter((n) => text(n) !== undefined);
    if (stray.length > 0) {
      throw new UsageError(
        `${stray.map((n) => `--${n}`).join(', ')} only apply with --servicenow URL (the instance to serve)`,
      );
    }
    return undefined;
  }
  let instanceUrl: string;
  try {
    instanceUrl = parseInstanceUrl(url).origin;
  } catch (error) {
    throw new UsageError(`--servicenow: ${(error as Error).message}`);
  }
  const username = text('sn-username');
  const password = text('sn-password');
  if (username === undefined || password === undefined) {
    throw new UsageError(
      '--servicenow needs the integration user: --sn-username NAME and --sn-password (or ITSM_SN_USERNAME and ITSM_SN_PASSWORD)',
    );
  }
  const clientId = text('sn-client-id');
  const clientSecret = text('sn-client-secret');
  if ((clientId === undefined) !== (clientSecret === undefined)) {
    throw new UsageError(
      'OAuth needs both --sn-client-id and --sn-client-secret (leave both out for Basic auth)',
    );
  }
  const auth: ServiceNowAuth =
    clientId !== undefined && clientSecret !== undefined
      ? { kind: 'oauth', clientId, clientSecret, username, password }
      : { kind: 'basic', username, password };
  const pushSecret = text('sn-push-secret');
  if (pushSecret !== undefined && pushSecret.length < 16) {
    throw new UsageError(
      '--sn-push-secret must be at least 16 characters (it guards the push endpoint)',
    );
  }
  return {
    instanceUrl,
    auth,
    account: positiveInt('sn-account', String(values['sn-account'] ?? '1'), 1),
    pollIntervalMs: positiveInt('poll-interval', String(values['poll-interval'] ?? '5000'), 0),
    ...(pushSecret !== undefined && { pushSecret }),
  };
}
