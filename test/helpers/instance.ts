// A ServiceNow instance for connector tests that drive the connector's parts directly (its feed,
// its objects): the embedded server's Table API face on 127.0.0.1 over real HTTP, with an
// integration user for the connector and a person (ann) who makes changes on the instance, and
// a fresh local SQLite store for the connector's own state. `useInstance` registers the
// set-up and tear-down of each test; what it returns reads the current test's instance.
import { afterEach, beforeEach, expect } from 'vitest';
import { openSqliteStore } from '../../src/runtime/node.js';
import { openConnection, type ServiceNowConnection } from '../../src/servicenow/connector.js';
import type { ItsmStore, StoredObject, UpstreamStateStore } from '../../src/storage/port.js';
import { callHttp, startTestItsm, type TestItsm } from './itsm.js';

export const INSTANCE_ACCOUNT = 1;

export interface ConnectOptions {
  /** Stands between the connector and the face (a fake of what only a real instance does). */
  fetch?: typeof globalThis.fetch;
  log?: (line: string) => void;
  /** Called with every object the feed renders into an event. */
  render?: (object: StoredObject) => void;
  notify?: () => void;
}

export interface TestInstance {
  face(): TestItsm;
  local(): ItsmStore & UpstreamStateStore;
  /** The connector of this test's instance, as the integration user, one attempt per call. */
  connect(options?: ConnectOptions): Promise<ServiceNowConnection>;
  /** A Table API call on the instance as ann, which must succeed; its `result`. */
  asAnn(method: string, path: string, body?: unknown): Promise<Record<string, string>>;
  /** The feed's events so far as [type, object id], of the objects whose id passes `keep`. */
  feedEvents(keep?: (id: string) => boolean): Promise<[string, string][]>;
}

/** `faults`: the face takes scripted faults (`face().itsm.faults.inject`). */
export function useInstance(options: { faults?: boolean } = {}): TestInstance {
  let face: TestItsm | undefined;
  let local: (ItsmStore & UpstreamStateStore) | undefined;
  beforeEach(async () => {
    face = await startTestItsm({
      ...(options.faults && { faults: {} }),
      tableApi: {
        users: [
          { name: 'integration', password: 's3cret', account: INSTANCE_ACCOUNT },
          { name: 'ann', password: 'pw', account: INSTANCE_ACCOUNT },
        ],
      },
    });
    local = openSqliteStore(':memory:');
  });
  afterEach(async () => {
    await local?.close();
    await face?.close();
  });
  const current = {
    face(): TestItsm {
      if (!face) throw new Error('useInstance: no instance outside a test');
      return face;
    },
    local(): ItsmStore & UpstreamStateStore {
      if (!local) throw new Error('useInstance: no local store outside a test');
      return local;
    },
  };
  return {
    ...current,
    connect: (options = {}) =>
      openConnection({
        settings: {
          instanceUrl: current.face().url,
          auth: { kind: 'basic', username: 'integration', password: 's3cret' },
          retry: { maxAttempts: 1 },
        },
        account: INSTANCE_ACCOUNT,
        local: current.local(),
        render: async (object) => {
          options.render?.(object);
          return { id: object.id, type: object.type };
        },
        notify: options.notify ?? (() => {}),
        retention: 10_000,
        ...(options.log && { log: options.log }),
        ...(options.fetch && { fetch: options.fetch }),
      }),
    async asAnn(method, path, body) {
      const response = await callHttp(current.face().url, method, `/api/now/table/${path}`, {
        auth: `Basic ${btoa('ann:pw')}`,
        ...(body !== undefined && { body }),
      });
      expect(response.status, `${method} ${path}: ${response.text}`).toBeLessThan(300);
      return response.json?.result;
    },
    async feedEvents(keep = () => true) {
      const { events } = await current.local().listEvents(INSTANCE_ACCOUNT, 0, 1000);
      return events
        .map((e): [string, string] => [e.type, String((e.metadata as { id: string }).id)])
        .filter(([, id]) => keep(id));
    },
  };
}
