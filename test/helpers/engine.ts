// Test factories for the rules engine against the embedded ITSM API: a real server on 127.0.0.1
// (with scripted fault injection on), a real client with short retry delays, a :memory: SQLite
// engine store, rule sets loaded from inline YAML, and evaluation inputs built from the server's
// own event log and objects, as the drain loop builds them.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type EngineEvent, eventPlanKey } from '../../src/engine/context.js';
import type { EvaluationInput } from '../../src/engine/evaluate.js';
import { loadRules, type RuleSet } from '../../src/engine/load.js';
import { formatProblem } from '../../src/engine/problem.js';
import {
  createItsmClient,
  type ItsmClient,
  type RetryInfo,
  type RetryOptions,
} from '../../src/itsm/client.js';
import type { ObjectType } from '../../src/itsm/fields.js';
import type { ItsmEvent } from '../../src/itsm/schemas.js';
import type { StartItsmServerOptions } from '../../src/runtime/node.js';
import { loadMigrations } from '../../src/runtime/node.js';
import type { FaultController } from '../../src/server/faults.js';
import type { EngineStore } from '../../src/storage/engine-port.js';
import { createSqliteEngineStore } from '../../src/storage/sqlite-engine.js';
import { startTestItsm, TEST_API_KEY, type TestItsm } from './itsm.js';

export interface EngineHarness {
  server: TestItsm;
  /** Scripted faults of the server (random rates are zero unless given). */
  faults: FaultController;
  client: ItsmClient;
  store: EngineStore;
  /** Every wait the client made between attempts, in order. */
  retries: RetryInfo[];
  close(): Promise<void>;
}

export async function startEngineHarness(
  options: { server?: Partial<StartItsmServerOptions>; retry?: RetryOptions } = {},
): Promise<EngineHarness> {
  const server = await startTestItsm({ faults: {}, ...options.server });
  const faults = server.itsm.faults;
  if (!faults) {
    await server.close();
    throw new Error('the embedded ITSM API was started without fault injection');
  }
  const retries: RetryInfo[] = [];
  const client = createItsmClient({
    baseUrl: `${server.url}/v1`,
    auth: { apiKey: TEST_API_KEY },
    retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5, ...options.retry },
    onRetry: (info) => retries.push(info),
  });
  const store = createSqliteEngineStore({ path: ':memory:', migrations: loadMigrations() });
  return {
    server,
    faults,
    client,
    store,
    retries,
    async close() {
      await store.close();
      await server.close();
    },
  };
}

/** Loads rules from inline YAML (`{'rules/x.yaml': text}`); throws naming every problem. */
export function loadRuleSet(files: Record<string, string>): RuleSet {
  const result = loadRules(Object.entries(files).map(([path, text]) => ({ path, text })));
  if (!result.ruleSet) {
    throw new Error(
      `the test rules do not load:\n${result.problems.map(formatProblem).join('\n')}`,
    );
  }
  return result.ruleSet;
}

/** Every event of the account's log, oldest first. */
export async function allEvents(client: ItsmClient, account = 1): Promise<ItsmEvent[]> {
  const events: ItsmEvent[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await client.events(account, { pageSize: 1000, cursor });
    events.push(...page.objects);
    cursor = page.cursor;
    if (page.remaining === 0) return events;
  }
}

/**
 * The evaluation input of the newest event about the object, as the drain loop builds it: the
 * event from the log, the object fetched now (null once deleted) and, for an update, `previous`.
 */
export async function inputFor(
  client: ItsmClient,
  objectType: ObjectType,
  id: string,
  options: { previous?: Record<string, unknown> | null; now?: Date; account?: number } = {},
): Promise<EvaluationInput> {
  const account = options.account ?? 1;
  const events = await allEvents(client, account);
  const latest = events.filter((event) => event.metadata.id === id).pop();
  if (!latest) throw new Error(`no event about ${objectType} ${id} in account ${account}`);
  const event: EngineEvent = {
    id: latest.id,
    type: latest.type,
    account,
    at: latest.modified,
    user_id: latest.user_id,
  };
  const object =
    latest.type === 'delete'
      ? null
      : ((await client.get(account, objectType, id)) as Record<string, unknown>);
  return {
    key: eventPlanKey(account, latest.id),
    event,
    objectType,
    object,
    previous: options.previous ?? null,
    now: options.now ?? new Date(),
  };
}

export interface Redirector {
  url: string;
  /** How many requests it answered. */
  hits(): number;
  close(): Promise<void>;
}

/** An outside service that answers every request with `status` and `Location: location`. */
export async function startRedirector(location: string, status = 302): Promise<Redirector> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits += 1;
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { Location: location, 'Content-Type': 'text/plain' });
      res.end('moved');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
