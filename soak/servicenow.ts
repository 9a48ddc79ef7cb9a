// The soak over the connector (`npm run soak -- --servicenow`): the instance is the Table API face
// (`itsm-rules itsm-server --sn-user ...`) in a process of its own, under the injected faults, never
// killed; the engine is `itsm-rules serve --servicenow` (the connector in process, its change feed
// polling the face), killed and restarted as in the plain soak. The driver changes the instance as
// a ServiceNow user does, through the Table API (an insert names its sys_id, so a retried insert
// that was applied before is recognised by the instance's "already exists"). The audit reads the
// instance's own store (the face's /v1 and event log, with the raw records), where every write
// the instance applied is an event: the engine's writes are those of the integration user.
import { createItsmClient, type ItsmClient } from '../src/itsm/client.js';
import { sysIdToUserId } from '../src/servicenow/user-id.js';
import type { AccountState, ApiEvent, ApiObject, CreatedIds } from './oracle.js';
import type { SoakChange } from './plan.js';

export const INSTANCE_KEY = 'soak-instance-key';
const INSTANCE_APP = 'soak-instance';
/** The ServiceNow user who makes the soak's changes on the instance. */
const DRIVER = { name: 'soak-driver', password: 'soak-driver-pw' };
/** The connector's integration user: its writes on the instance are the engine's. */
export const INTEGRATION = { name: 'itsm-rules-integration', password: 'soak-integration-pw' };

/** `itsm-server` flags of the instance: the face, its two users in `account`, and the faults. */
export function instanceArgs(port: number, db: string, account: number, faults: string): string[] {
  return [
    'itsm-server',
    ...['--port', String(port), '--host', '127.0.0.1', '--db', db],
    ...['--api-key', INSTANCE_KEY, '--app-id', INSTANCE_APP],
    ...['--sn-user', `${DRIVER.name}:${DRIVER.password}:${account}`],
    ...['--sn-user', `${INTEGRATION.name}:${INTEGRATION.password}:${account}`],
    ...['--faults', faults],
  ];
}

/** `serve` flags and environment of the engine all-in-one over the instance at `instanceUrl`. */
export function engineOverInstance(
  instanceUrl: string,
  account: number,
): { args: string[]; env: Record<string, string> } {
  return {
    args: [
      ...['--servicenow', instanceUrl, '--sn-account', String(account)],
      // Polled often, so that a run is not mostly waiting for the feed.
      ...['--poll-interval', '200'],
    ],
    env: { ITSM_SN_USERNAME: INTEGRATION.name, ITSM_SN_PASSWORD: INTEGRATION.password },
  };
}

/** A Table API call the instance refused or could not answer. */
export class TableApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'TableApiError';
  }
}

/** A sys_id of the run's `index`-th change: unique in the run, the same on every retry. */
function sysIdOf(seed: number, index: number): string {
  return `${(seed >>> 0).toString(16).padStart(8, '0')}${index.toString(16).padStart(24, '0')}`;
}

const PRIORITY = { medium: '3', low: '4' } as const;

/** The driver's side of the instance: its changes as Table API calls of a ServiceNow user. */
export class InstanceWriter {
  constructor(readonly url: string) {}

  private async call(method: string, path: string, body: unknown): Promise<number> {
    const response = await fetch(`${this.url}/api/now/table/${path}`, {
      method,
      headers: {
        Authorization: `Basic ${btoa(`${DRIVER.name}:${DRIVER.password}`)}`,
        'Content-Type': 'application/json',
        Accept: 'application/json',
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await response.text();
    if (response.ok) return response.status;
    // An insert answered 500 or cut off may have been applied: its retry, with the same sys_id,
    // finds the record there, which is the insert done.
    if (method === 'POST' && response.status === 403 && text.includes('already exists')) {
      return response.status;
    }
    throw new TableApiError(response.status, `${method} ${path}: ${response.status} ${text}`);
  }

  /**
   * Makes `change` on the instance (`persist` repeats a call until it passes); `ids` maps the
   * driver's refs to the sys_ids it chose.
   */
  async apply(
    change: SoakChange,
    index: number,
    seed: number,
    ids: Map<string, string>,
    persist: <T>(what: string, call: () => Promise<T>) => Promise<T>,
  ): Promise<void> {
    const id = (ref: string) => {
      const found = ids.get(ref);
      if (!found) throw new Error(`change ${index} refers to ${ref}, which was not created`);
      return found;
    };
    const what = `change ${index}`;
    switch (change.kind) {
      case 'incident': {
        const sysId = sysIdOf(seed, index);
        await persist(what, () =>
          this.call('POST', 'incident', {
            sys_id: sysId,
            short_description: `soak ${change.role} ${change.ref}`,
            description: `soak ${change.role} ${change.ref}`,
            category: change.category,
            priority: PRIORITY[change.priority],
          }),
        );
        ids.set(change.ref, sysId);
        return;
      }
      case 'problem': {
        const sysId = sysIdOf(seed, index);
        await persist(what, () =>
          this.call('POST', 'problem', {
            sys_id: sysId,
            short_description: `soak problem ${change.ref}`,
            description: `soak problem ${change.ref}`,
            category: 'soak',
            state: '101',
          }),
        );
        ids.set(change.ref, sysId);
        return;
      }
      case 'fix':
        await persist(what, () =>
          this.call('PATCH', `problem/${id(change.problemRef)}`, { state: '104' }),
        );
        return;
      case 'touch':
        await persist(what, () =>
          this.call('PATCH', `incident/${id(change.incidentRef)}`, { description: change.text }),
        );
        return;
    }
  }
}

/** The instance's own `/v1` (the face's), raw records included: where the audit reads. */
export function instanceClient(url: string): ItsmClient {
  return createItsmClient({
    baseUrl: `${url}/v1`,
    auth: { apiKey: INSTANCE_KEY },
    rawData: true,
    userAgent: 'itsm-rules-soak',
    timeoutMs: 15_000,
    retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 50 },
  });
}

/** The user id the instance's events give the integration user's writes (the engine's). */
export async function integrationUserId(url: string): Promise<string> {
  const response = await fetch(
    `${url}/api/now/table/sys_user?sysparm_query=user_name=${INTEGRATION.name}&sysparm_fields=sys_id`,
    { headers: { Authorization: `Basic ${btoa(`${INTEGRATION.name}:${INTEGRATION.password}`)}` } },
  );
  const text = await response.text();
  if (!response.ok) throw new TableApiError(response.status, `sys_user: ${text}`);
  const sysId = (JSON.parse(text) as { result: { sys_id: string }[] }).result[0]?.sys_id;
  if (!sysId) throw new Error(`the instance has no sys_user ${INTEGRATION.name}`);
  return sysIdToUserId(sysId);
}

/**
 * The account as the instance holds it, in the shape the oracle judges, and the driver's refs
 * mapped to the instance's `/v1` ids (the driver knows its records by the sys_ids it chose).
 */
export async function readInstance(
  client: ItsmClient,
  account: number,
  sysIds: ReadonlyMap<string, string>,
  persist: <T>(what: string, call: () => Promise<T>) => Promise<T>,
): Promise<{ state: AccountState; ids: CreatedIds }> {
  const idBySysId = new Map<string, string>();
  const list = (type: 'incident' | 'problem' | 'change') =>
    persist(`list ${type}s of the instance`, async () => {
      const objects: ApiObject[] = [];
      for await (const object of client.list(account, type, { pageSize: 1000 })) {
        const raw = (object as { raw?: { sys_id?: string } }).raw;
        if (raw?.sys_id) idBySysId.set(raw.sys_id, object.id);
        objects.push(object as unknown as ApiObject);
      }
      return objects;
    });
  const events: ApiEvent[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await persist('events of the instance', () =>
      client.events(account, { ...(cursor !== undefined && { cursor }), pageSize: 1000 }),
    );
    events.push(...(page.objects as unknown as ApiEvent[]));
    cursor = page.cursor;
    if (page.remaining === 0 || page.objects.length === 0) break;
  }
  const state: AccountState = {
    account,
    incidents: await list('incident'),
    problems: await list('problem'),
    changes: await list('change'),
    events,
  };
  const ids = new Map<string, string>();
  for (const [ref, sysId] of sysIds) {
    const id = idBySysId.get(sysId);
    if (id) ids.set(ref, id);
  }
  return { state, ids };
}
