// Test factories for the embedded ITSM API: a real server on 127.0.0.1 (port 0, :memory:
// SQLite) and a small HTTP client that returns status, headers, text and parsed JSON.
import {
  type RunningItsmServer,
  type StartItsmServerOptions,
  startItsmServer,
} from '../../src/runtime/node.js';

export const TEST_API_KEY = 'test-api-key';

/**
 * Whether the suite runs over the ServiceNow connector (`ITSM_TEST_BACKEND=servicenow`). A test
 * whose expectation differs there says why beside it: only where a real instance itself differs
 * (ids it gives, ordering within one second), never to relax a check of the embedded store.
 */
export const OVER_SERVICENOW = process.env.ITSM_TEST_BACKEND === 'servicenow';
export const TEST_APP_ID = 'test-app';

/** An object as created: its id, creation time (any sortable form) and upstream sys_id. */
export interface CreatedObject {
  id: string;
  created: string;
  sysId: string;
}

/**
 * The ids of objects created one after another, in the order a list shows them. The embedded
 * store lists in creation order. A ServiceNow instance stamps `sys_created_on` to the second, so
 * over the connector records of one second list by sys_id (the tie-break the connector asks
 * for, numbered tables by number first, which follows creation): the order an instance gives.
 */
export function listOrder(objects: readonly CreatedObject[]): string[] {
  const ordered = OVER_SERVICENOW
    ? [...objects].sort(
        (a, b) =>
          a.created.localeCompare(b.created) ||
          (a.sysId < b.sysId ? -1 : a.sysId > b.sysId ? 1 : 0),
      )
    : objects;
  return ordered.map((o) => o.id);
}

export interface TestItsm extends RunningItsmServer {
  /** Log lines the server wrote. */
  logs: string[];
  call: (method: string, path: string, init?: CallInit) => Promise<CallResult>;
}

export interface CallInit {
  /** JSON-serialised unless it is already a string. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Authorization header value; default `APIKey <TEST_API_KEY>`; null sends none. */
  auth?: string | null;
  /** `manual` answers a redirect itself instead of following it (default `follow`). */
  redirect?: 'follow' | 'manual';
}

export interface CallResult {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
  json: any;
}

/**
 * With `ITSM_TEST_BACKEND=servicenow`, the same server over a ServiceNow instance: an embedded
 * server's Table API face on its own port stands in for the instance, and the server under test
 * is the connector over it, each account connected on first use as the application of that
 * account of the instance (Basic `ACCOUNT:KEY`, so no sys_user appears for the integration).
 * Feed polling is off: writes through the connector report their own events at once, so the
 * suite waits for nothing.
 */
async function overServiceNow(
  overrides: Partial<StartItsmServerOptions>,
): Promise<Partial<StartItsmServerOptions> & { instance?: RunningItsmServer }> {
  if (!OVER_SERVICENOW || overrides.servicenow || overrides.store) {
    return overrides;
  }
  const instance = await startItsmServer({
    port: 0,
    host: '127.0.0.1',
    db: ':memory:',
    apiKey: 'instance-key',
    appId: 'instance',
    log: () => {},
  });
  return {
    ...overrides,
    instance,
    servicenow: (account) => ({
      instanceUrl: instance.url,
      auth: { kind: 'basic', username: String(account), password: 'instance-key' },
      account,
      pollIntervalMs: 0,
    }),
  };
}

export async function startTestItsm(
  requested: Partial<StartItsmServerOptions> = {},
): Promise<TestItsm> {
  const { instance, ...overrides } = await overServiceNow(requested);
  const logs: string[] = [];
  const running = await startItsmServer({
    port: 0,
    host: '127.0.0.1',
    db: ':memory:',
    apiKey: TEST_API_KEY,
    appId: TEST_APP_ID,
    log: (line) => logs.push(line),
    ...overrides,
  });
  const call = (method: string, path: string, init: CallInit = {}) =>
    callHttp(running.url, method, path, init);
  if (instance) {
    const close = running.close.bind(running);
    running.close = async () => {
      await close();
      await instance.close();
    };
  }
  return Object.assign(running, { logs, call });
}

/** One request to `${base}${path}` (APIKey auth unless told otherwise), with the answer read. */
export async function callHttp(
  base: string,
  method: string,
  path: string,
  init: CallInit = {},
): Promise<CallResult> {
  const headers: Record<string, string> = { ...init.headers };
  const auth = init.auth === undefined ? `APIKey ${TEST_API_KEY}` : init.auth;
  if (auth !== null) headers.Authorization = auth;
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    headers['Content-Type'] ??= 'application/json';
  }
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    body,
    ...(init.redirect && { redirect: init.redirect }),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}
