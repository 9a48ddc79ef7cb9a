// `npm run soak`: the all-in-one system (`itsm-rules serve` in a child process, on a SQLite file,
// 127.0.0.1 only) under injected faults, with thousands of changes across many accounts, extra
// signed webhook notifications (replayed and out of order), and the engine killed with SIGKILL
// and restarted on the same database at random moments. At the end, once the engine is idle,
// the ITSM state and event log are read back over the API and judged against what the soak
// rules demand (soak/oracle.ts, worked out from the list of changes alone): missed and
// duplicated effects are counted and printed; any is a failure (exit 1).
//   npm run soak                           the full form (see --help for the figures it uses)
//   npm run soak -- --reduced              the CI form: about a minute or two
//   npm run soak -- --seed 7 --kills 8     a seeded run repeats its inputs
//   npm run soak -- --servicenow           over the connector: the instance is the Table API face
//                                          in its own process, faulted; `serve --servicenow` is
//                                          killed (soak/servicenow.ts)
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createItsmClient, ItsmApiError, type ItsmClient } from '../src/itsm/client.js';
import { signBody } from '../src/itsm/signature.js';
import { seededRandom } from '../src/server/faults.js';
import {
  type AccountState,
  type ApiEvent,
  type ApiObject,
  type CreatedIds,
  ENGINE_USER,
  judge,
} from './oracle.js';
import { accountIds, planChanges, type SoakChange } from './plan.js';
import {
  engineOverInstance,
  INSTANCE_KEY,
  InstanceWriter,
  instanceArgs,
  instanceClient,
  integrationUserId,
  readInstance,
  TableApiError,
} from './servicenow.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const API_KEY = 'soak-api-key';
const APP_ID = 'itsm-rules-soak';
const DRIVER_USER = 'soak-driver';
const LISTENING = /itsm-rules listening on (http:\/\/127\.0\.0\.1:\d+)/;
const API_LISTENING = /itsm-api listening on (http:\/\/127\.0\.0\.1:\d+)/;

interface SoakOptions {
  changes: number;
  accounts: number;
  kills: number;
  faultRate: number;
  retryAfter: number;
  seed: number;
  durationMaxMs: number;
  concurrency: number;
  json: boolean;
  keep: boolean;
  /** Over the connector: the instance is the Table API face, the engine `serve --servicenow`. */
  servicenow: boolean;
}

const FULL = { changes: 3000, accounts: 20, kills: 10 };
const REDUCED = { changes: 600, accounts: 6, kills: 5 };
// One instance is one account of the connector, so its changes are made one after another.
const FULL_SN = { changes: 1500, accounts: 1, kills: 10 };
const REDUCED_SN = { changes: 300, accounts: 1, kills: 5 };

const HELP = `usage: npm run soak -- [flags]

The all-in-one system under faults, notification replays and SIGKILLs; then the ITSM state is
judged against what soak/rules demand. Exit 0 when nothing is missed, duplicated or written twice, 1 otherwise,
2 for a usage error. 127.0.0.1 only.

flags:
  --changes N         changes the driver makes (default ${FULL.changes}; reduced ${REDUCED.changes})
  --accounts N        accounts they are spread over (default ${FULL.accounts}; reduced ${REDUCED.accounts})
  --kills N           SIGKILLs of the engine, each followed by a restart (default ${FULL.kills}; reduced ${REDUCED.kills})
  --fault-rate F      share of API calls given a fault: 500s, 429s, writes applied then answered
                      500, writes applied then cut off (default 0.2)
  --retry-after S     Retry-After of the injected 429s, seconds (default 0)
  --seed S            seed of the changes, the kill points and the faults (default: random, printed)
  --duration-max D    give up (exit 1) after this long: 90s, 10m (default 10m)
  --concurrency N     changes in flight at once, one per account at a time (default 4)
  --reduced           the CI form: ${REDUCED.changes} changes, ${REDUCED.accounts} accounts, ${REDUCED.kills} kills (flags given still win)
  --servicenow        over the connector: the instance is the Table API face (itsm-server with
                      ServiceNow users) in its own process, given the faults and never killed;
                      the engine is serve --servicenow (all-in-one), SIGKILLed and restarted;
                      the driver changes the instance through the Table API as a ServiceNow
                      user, and the audit reads the instance. One instance is one account:
                      ${FULL_SN.changes} changes, ${FULL_SN.kills} kills (reduced ${REDUCED_SN.changes}, ${REDUCED_SN.kills}); --accounts must be 1
  --json              end with one line: SOAK-SUMMARY {json}
  --keep              keep the temporary folder (database and engine logs)
  --help              show this help`;

class UsageError extends Error {}

function wholeNumber(flag: string, text: string | undefined, fallback: number, min = 0): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min) {
    throw new UsageError(`--${flag} must be a whole number >= ${min}, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (!match)
    throw new UsageError(`--duration-max must be like 90s or 10m, got ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
}

function parseOptions(argv: string[]): SoakOptions | 'help' {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        changes: { type: 'string' },
        accounts: { type: 'string' },
        kills: { type: 'string' },
        'fault-rate': { type: 'string' },
        'retry-after': { type: 'string' },
        seed: { type: 'string' },
        'duration-max': { type: 'string' },
        concurrency: { type: 'string' },
        reduced: { type: 'boolean' },
        servicenow: { type: 'boolean' },
        json: { type: 'boolean' },
        keep: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values as Record<string, string | boolean | undefined>;
  if (v.help) return 'help';
  const servicenow = v.servicenow === true;
  const base = servicenow ? (v.reduced ? REDUCED_SN : FULL_SN) : v.reduced ? REDUCED : FULL;
  if (servicenow && v.accounts !== undefined && v.accounts !== '1') {
    throw new UsageError(
      `--servicenow serves one instance as one account, so --accounts must be 1, got ${JSON.stringify(v.accounts)}`,
    );
  }
  const rateText = (v['fault-rate'] as string | undefined) ?? '0.2';
  const faultRate = Number(rateText);
  if (!/^\d*\.?\d+$/.test(rateText) || faultRate > 0.5) {
    throw new UsageError(
      `--fault-rate must be a share from 0 to 0.5, got ${JSON.stringify(rateText)}`,
    );
  }
  return {
    changes: wholeNumber('changes', v.changes as string | undefined, base.changes, 1),
    accounts: wholeNumber('accounts', v.accounts as string | undefined, base.accounts, 1),
    kills: wholeNumber('kills', v.kills as string | undefined, base.kills),
    faultRate,
    retryAfter: wholeNumber('retry-after', v['retry-after'] as string | undefined, 0),
    seed: wholeNumber('seed', v.seed as string | undefined, Math.floor(Math.random() * 2 ** 31)),
    durationMaxMs: parseDuration((v['duration-max'] as string | undefined) ?? '10m'),
    concurrency: wholeNumber('concurrency', v.concurrency as string | undefined, 4, 1),
    json: v.json === true,
    keep: v.keep === true,
    servicenow,
  };
}

/**
 * The --faults spec for a fault rate F. 500s and 429s hit every request (0.32 F each); the two
 * write faults hit writes only, about half of the calls, so they get 0.7 F each, which brings
 * the faulted share of all calls a little above F (the run prints the share measured).
 */
function faultSpec(options: SoakOptions, life: number): string {
  const f = options.faultRate;
  const r = (x: number) => Number(x.toFixed(4));
  return [
    `500=${r(0.32 * f)}`,
    `429=${r(0.32 * f)}`,
    `retry-after=${options.retryAfter}`,
    `after-write=${r(0.7 * f)}`,
    `drop=${r(0.7 * f)}`,
    'latency=2ms',
    'latency-rate=0.05',
    // Each life of the engine draws its own faults, reproducibly.
    `seed=${(options.seed + life * 7919) % 2 ** 32}`,
  ].join(',');
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The engine in a child process, killed and restarted

interface FaultCounts {
  requests: number;
  faults: number;
  byKind: Record<string, number>;
}

/** How a server process of the soak is started, and where its fault counters are read. */
interface ServerSpec {
  /** In log lines: `serve`, `instance`. */
  name: string;
  /** The command line of a life (1, 2, ...) after `bin/itsm-rules.js`. */
  args(life: number): string[];
  /** Environment beyond the driver's own (minus every ITSM_* variable). */
  env?: Record<string, string>;
  /** The line that says it listens. */
  listening: RegExp;
  /** The application key of its `/_faults`; none when it runs without faults. */
  faultsKey: string | null;
}

class Engine {
  private child: ChildProcess | null = null;
  life = 0;
  readonly faults: FaultCounts = { requests: 0, faults: 0, byKind: {} };

  constructor(
    private readonly spec: ServerSpec,
    readonly url: string,
    private readonly logFile: string,
  ) {}

  async start(): Promise<void> {
    this.life++;
    const args = ['bin/itsm-rules.js', ...this.spec.args(this.life)];
    const env = {
      ...Object.fromEntries(
        Object.entries(process.env).filter(([key]) => !key.startsWith('ITSM_')),
      ),
      ...this.spec.env,
    };
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    appendFileSync(this.logFile, `\n===== life ${this.life}: ${args.join(' ')}\n`);
    child.stderr?.on('data', (chunk: Buffer) => appendFileSync(this.logFile, chunk));
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.spec.name} did not start in 60 s:\n${out}`)),
        60_000,
      );
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        appendFileSync(this.logFile, chunk);
        if (this.spec.listening.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(
          new Error(`${this.spec.name} exited (${code ?? signal}) at start; see ${this.logFile}`),
        );
      });
    });
  }

  /** Adds this life's fault counters to the totals (read just before the life ends). */
  async collectFaults(): Promise<void> {
    if (this.spec.faultsKey === null) return;
    try {
      const response = await fetch(`${this.url}/_faults`, {
        headers: { Authorization: `APIKey ${this.spec.faultsKey}` },
      });
      const counts = (await response.json()) as FaultCounts;
      this.faults.requests += counts.requests;
      this.faults.faults += counts.faults;
      for (const [kind, n] of Object.entries(counts.byKind)) {
        this.faults.byKind[kind] = (this.faults.byKind[kind] ?? 0) + n;
      }
    } catch {
      // Down already: this life's figures are lost, and the totals are a lower bound.
    }
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await this.collectFaults();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await this.collectFaults();
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const forced = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(forced);
  }
}

// ---------------------------------------------------------------------------------------------
// The driver

/** Whether a failed call may pass on a later try: faults, and the engine being restarted. */
function isPassing(error: unknown): boolean {
  if (error instanceof ItsmApiError || error instanceof TableApiError) {
    return error.status >= 500 || error.status === 429;
  }
  return true; // network errors, timeouts, connection refused while the engine restarts
}

class Driver {
  readonly ids = new Map<string, string>();
  readonly client: ItsmClient;
  notificationsSent = 0;
  notificationsAccepted = 0;
  callsRepeated = 0;

  constructor(
    readonly url: string,
    private readonly deadline: number,
    private readonly random: () => number,
    /** Over the connector: the changes are made on the instance, not through the engine's API. */
    private readonly instance: InstanceWriter | null = null,
  ) {
    this.client = createItsmClient({
      baseUrl: `${url}/v1`,
      auth: { apiKey: API_KEY },
      asUser: DRIVER_USER,
      userAgent: 'itsm-rules-soak',
      timeoutMs: 15_000,
      retry: { maxAttempts: 4, baseDelayMs: 5, maxDelayMs: 50 },
    });
  }

  /** Repeats `call` until it succeeds: a create always with the same Idempotency-Key. */
  async persist<T>(what: string, call: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await call();
      } catch (error) {
        if (!isPassing(error)) throw new Error(`${what}: ${(error as Error).message}`);
        if (Date.now() > this.deadline) {
          throw new Error(`${what}: still failing at --duration-max: ${(error as Error).message}`);
        }
        this.callsRepeated++;
        await sleep(50 + Math.floor(this.random() * 100));
      }
    }
  }

  async apply(change: SoakChange, index: number, seed: number): Promise<void> {
    if (this.instance) {
      return this.instance.apply(change, index, seed, this.ids, (what, call) =>
        this.persist(what, call),
      );
    }
    const key = `soak-${seed}-${index}`;
    const account = change.account;
    const id = (ref: string) => {
      const found = this.ids.get(ref);
      if (!found) throw new Error(`change ${index} refers to ${ref}, which was not created`);
      return found;
    };
    switch (change.kind) {
      case 'incident': {
        const made = await this.persist(`change ${index}`, () =>
          this.client.create(
            account,
            'incident',
            {
              category: change.category,
              priority: change.priority,
              description: `soak ${change.role} ${change.ref}`,
            },
            { idempotencyKey: key },
          ),
        );
        this.ids.set(change.ref, made.id);
        return;
      }
      case 'problem': {
        const made = await this.persist(`change ${index}`, () =>
          this.client.create(
            account,
            'problem',
            { category: 'soak', status: 101, description: `soak problem ${change.ref}` },
            { idempotencyKey: key },
          ),
        );
        this.ids.set(change.ref, made.id);
        return;
      }
      case 'fix':
        await this.persist(`change ${index}`, () =>
          this.client.update(account, 'problem', id(change.problemRef), { status: 104 }),
        );
        return;
      case 'touch':
        await this.persist(`change ${index}`, () =>
          this.client.update(account, 'incident', id(change.incidentRef), {
            description: change.text,
          }),
        );
        return;
    }
  }

  /**
   * Extra notifications, signed as the API signs them, for accounts in a shuffled order, some
   * twice, some form-encoded: the receiver must treat them as the hints they are.
   */
  async replayNotifications(accounts: readonly number[]): Promise<void> {
    const burst = 1 + Math.floor(this.random() * 4);
    const chosen = Array.from(
      { length: burst },
      () => accounts[Math.floor(this.random() * accounts.length)] as number,
    );
    await Promise.all(
      chosen.map(async (account) => {
        const form = this.random() < 0.2;
        const body = form
          ? `account=${account}`
          : JSON.stringify({ account, subscription: 1 + Math.floor(this.random() * 3) });
        this.notificationsSent++;
        try {
          const response = await fetch(`${this.url}/webhooks/kloudless`, {
            method: 'POST',
            headers: {
              'Content-Type': form ? 'application/x-www-form-urlencoded' : 'application/json',
              'User-Agent': 'kloudless-webhook/1.0',
              'X-Kloudless-Signature': await signBody(body, API_KEY),
            },
            body,
          });
          await response.body?.cancel();
          if (response.ok) this.notificationsAccepted++;
        } catch {
          // The engine is being restarted: this one is lost, as a real one would be.
        }
      }),
    );
  }
}

/** Runs the changes: in order per account, `concurrency` accounts at a time. */
async function driveChanges(
  driver: Driver,
  changes: readonly SoakChange[],
  options: SoakOptions,
  onProgress: (done: number) => Promise<void>,
): Promise<void> {
  const chains = new Map<number, Promise<void>>();
  const inFlight = new Set<Promise<void>>();
  let done = 0;
  let failure: unknown = null;
  for (const [index, change] of changes.entries()) {
    if (failure) break;
    while (inFlight.size >= options.concurrency) await Promise.race(inFlight);
    const previous = chains.get(change.account) ?? Promise.resolve();
    const task = previous
      .then(() => driver.apply(change, index, options.seed))
      .then(() => onProgress(++done))
      .catch((error) => {
        failure ??= error;
      });
    chains.set(change.account, task);
    const tracked = task.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
  await Promise.all(chains.values());
  if (failure) throw failure;
}

// ---------------------------------------------------------------------------------------------
// Idle, then the audit

function metricLines(text: string, name: string): string[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `));
}

function metricValue(line: string): number {
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/**
 * The engine has nothing left: its queue is empty, no account lags, no object is parked (parked
 * work is retried later and its effects are still owed), and no event is new. When it never gets
 * there, `busy` says what it saw last, so that a run that timed out can be read afterwards.
 */
async function waitForIdle(
  driver: Driver,
  engineUrl: string,
  accounts: readonly number[],
  deadline: number,
  /** More that must stay the same (over the connector: the instance's own event log). */
  more: () => Promise<string> = async () => '',
): Promise<{ idle: boolean; busy: string }> {
  const auth = { Authorization: `APIKey ${API_KEY}` };
  let previous = '';
  let stableSince = 0;
  let busy = 'nothing looked at yet';
  while (Date.now() < deadline) {
    try {
      const health = (await (await fetch(`${engineUrl}/healthz`)).json()) as {
        queue?: { running: unknown[]; pending: unknown[]; retrying: unknown[] };
      };
      const metrics = await (await fetch(`${engineUrl}/metrics`, { headers: auth })).text();
      const queue = health.queue;
      const reasons: string[] = [];
      if (!queue) reasons.push('/healthz has no queue');
      else if (queue.running.length + queue.pending.length + queue.retrying.length > 0) {
        reasons.push(`queue ${JSON.stringify(queue)}`);
      }
      for (const name of [
        'itsm_rules_drain_lag_seconds',
        'itsm_rules_events_remaining',
        'itsm_rules_parked_objects',
      ]) {
        const lines = metricLines(metrics, name).filter((line) => metricValue(line) > 0);
        if (lines.length > 0) reasons.push(lines.join('; '));
      }
      const cursors: string[] = [];
      for (const account of accounts) {
        cursors.push(
          await driver.persist('latest cursor', () => driver.client.latestCursor(account)),
        );
      }
      const now = `${cursors.join(',')};${await more()}`;
      if (reasons.length > 0 || now !== previous) {
        busy = reasons.length > 0 ? reasons.join('; ') : `new events (cursors ${now})`;
        previous = now;
        stableSince = 0;
      } else if (stableSince === 0) {
        stableSince = Date.now();
      } else if (Date.now() - stableSince >= 2_000) {
        return { idle: true, busy: '' };
      }
    } catch (error) {
      // Faulted or restarting: look again.
      busy = `looking failed: ${(error as Error).message}`;
    }
    await sleep(250);
  }
  return { idle: false, busy };
}

async function readAccount(driver: Driver, account: number): Promise<AccountState> {
  const list = async (type: 'incident' | 'problem' | 'change') =>
    driver.persist(`list ${type}s of ${account}`, async () => {
      const objects: ApiObject[] = [];
      for await (const object of driver.client.list(account, type, { pageSize: 1000 })) {
        objects.push(object as unknown as ApiObject);
      }
      return objects;
    });
  const events: ApiEvent[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await driver.persist(`events of ${account}`, () =>
      driver.client.events(account, { ...(cursor !== undefined && { cursor }), pageSize: 1000 }),
    );
    events.push(...(page.objects as unknown as ApiEvent[]));
    cursor = page.cursor;
    if (page.remaining === 0 || page.objects.length === 0) break;
  }
  return {
    account,
    incidents: await list('incident'),
    problems: await list('problem'),
    changes: await list('change'),
    events,
  };
}

// ---------------------------------------------------------------------------------------------

export interface SoakSummary {
  ok: boolean;
  /** Over the connector (`--servicenow`): the instance faulted, `serve --servicenow` killed. */
  servicenow: boolean;
  seed: number;
  changes: number;
  accounts: number;
  kills: number;
  restarts: number;
  faultRate: number;
  faults: FaultCounts & { share: number };
  notificationsReplayed: number;
  driverRepeats: number;
  engineWrites: number;
  expectedEffects: number;
  missed: number;
  duplicated: number;
  unexpected: number;
  /** Activity-log duplicates: engine updates that only repeat its previous write of the object. */
  repeatedWrites: number;
  findings: string[];
  durationMs: number;
  idle: boolean;
  /** When the engine never went idle: what it last saw busy (queue, lag, parked, new events). */
  busy?: string;
}

async function soak(options: SoakOptions): Promise<SoakSummary> {
  const started = Date.now();
  const deadline = started + options.durationMaxMs;
  const random = seededRandom(options.seed ^ 0x5eed);
  const changes = planChanges(options);
  const accounts = accountIds(options.accounts);
  const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-soak-'));
  const logFile = join(dir, 'engine.log');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const db = join(dir, 'soak.db');
  const serveArgs = [
    'serve',
    ...['--port', String(port), '--host', '127.0.0.1', '--db', db],
    ...['--rules', 'soak/rules', '--api-key', API_KEY, '--app-id', APP_ID],
    ...['--reload-interval', '0', '--no-schedules', '--concurrency', '4'],
  ];
  // Over the connector the faults are the instance's, which lives through the whole run.
  let instance: Engine | null = null;
  let engine: Engine;
  if (options.servicenow) {
    const instancePort = await freePort();
    const instanceUrl = `http://127.0.0.1:${instancePort}`;
    const account = accounts[0] as number;
    instance = new Engine(
      {
        name: 'instance',
        args: () =>
          instanceArgs(instancePort, join(dir, 'instance.db'), account, faultSpec(options, 0)),
        listening: API_LISTENING,
        faultsKey: INSTANCE_KEY,
      },
      instanceUrl,
      join(dir, 'instance.log'),
    );
    const over = engineOverInstance(instanceUrl, account);
    engine = new Engine(
      {
        name: 'serve --servicenow',
        args: () => [...serveArgs, ...over.args],
        env: over.env,
        listening: LISTENING,
        faultsKey: null,
      },
      url,
      logFile,
    );
  } else {
    engine = new Engine(
      {
        name: 'serve',
        args: (life) => [...serveArgs, '--faults', faultSpec(options, life)],
        listening: LISTENING,
        faultsKey: API_KEY,
      },
      url,
      logFile,
    );
  }
  const faulted = instance ?? engine;
  const driver = new Driver(
    url,
    deadline,
    random,
    instance ? new InstanceWriter(instance.url) : null,
  );
  console.error(
    `soak: seed ${options.seed}, ${changes.length} changes, ${accounts.length} accounts, ${options.kills} kills, faults ${faultSpec(options, instance ? 0 : 1)}${instance ? ' on the instance (the Table API face)' : ''}; engine log ${logFile}`,
  );
  /**
   * Starts the engine. Over the connector a start can fail on the instance's faults (its first
   * calls check the user and prime the feed, each retried a few times): started again, as a
   * supervisor would.
   */
  const startEngine = async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await engine.start();
      } catch (error) {
        if (!instance || attempt >= 5) throw error;
        console.error(`soak: ${(error as Error).message}; starting it again`);
        await sleep(500);
      }
    }
  };

  // Kill points: after a random share (5%..95%) of the changes, each at a random moment after.
  const killAt = Array.from({ length: options.kills }, () =>
    Math.floor(changes.length * (0.05 + 0.9 * random())),
  ).sort((a, b) => a - b);
  let kills = 0;
  let killing: Promise<void> = Promise.resolve();
  const killAndRestart = async () => {
    await sleep(Math.floor(random() * 300));
    await engine.kill();
    kills++;
    console.error(`soak: SIGKILL ${kills} of ${options.kills} (life ${engine.life})`);
    await sleep(Math.floor(random() * 300));
    await startEngine();
  };

  let summary: SoakSummary | null = null;
  try {
    await instance?.start();
    await startEngine();
    await driveChanges(driver, changes, options, async (done) => {
      if (random() < 0.15) void driver.replayNotifications(accounts);
      while (killAt.length > 0 && done >= (killAt[0] as number)) {
        killAt.shift();
        killing = killing.then(killAndRestart);
      }
      if (done % 500 === 0) console.error(`soak: ${done} of ${changes.length} changes made`);
    });
    await killing;
    // A last burst of replays once every change is made.
    await driver.replayNotifications(accounts);
    const onInstance = instance ? instanceClient(instance.url) : null;
    const { idle, busy } = await waitForIdle(driver, url, accounts, deadline, async () =>
      onInstance
        ? await driver.persist('latest cursor of the instance', () =>
            onInstance.latestCursor(accounts[0] as number),
          )
        : '',
    );
    if (!idle) console.error(`soak: the engine did not go idle before --duration-max: ${busy}`);
    const states: AccountState[] = [];
    let ids: CreatedIds = driver.ids;
    let engineUser = ENGINE_USER;
    if (instance && onInstance) {
      // The instance is the truth: every write it applied is an event of its own log.
      const read = await readInstance(onInstance, accounts[0] as number, driver.ids, (w, c) =>
        driver.persist(w, c),
      );
      states.push(read.state);
      ids = read.ids;
      engineUser = await driver.persist('the integration user', () =>
        integrationUserId(instance.url),
      );
    } else {
      for (const account of accounts) states.push(await readAccount(driver, account));
    }
    await engine.stop();
    await instance?.stop();

    const verdict = judge(changes, ids, states, engineUser);
    const findings = [
      ...verdict.missed.map((f) => `MISSED account ${f.account}: ${f.what}`),
      ...verdict.duplicated.map((f) => `DUPLICATED account ${f.account}: ${f.what}`),
      ...verdict.unexpected.map((f) => `UNEXPECTED account ${f.account}: ${f.what}`),
      ...verdict.repeated.map((f) => `REPEATED WRITE account ${f.account}: ${f.what}`),
    ];
    summary = {
      ok: idle && findings.length === 0,
      servicenow: options.servicenow,
      seed: options.seed,
      changes: changes.length,
      accounts: accounts.length,
      kills,
      restarts: engine.life - 1,
      faultRate: options.faultRate,
      faults: {
        ...faulted.faults,
        share: faulted.faults.requests ? faultsProper(faulted.faults) / faulted.faults.requests : 0,
      },
      notificationsReplayed: driver.notificationsAccepted,
      driverRepeats: driver.callsRepeated,
      engineWrites: states.reduce(
        (n, s) => n + s.events.filter((e) => e.user_id === engineUser).length,
        0,
      ),
      expectedEffects: verdict.expected,
      missed: verdict.missed.length,
      duplicated: verdict.duplicated.length,
      unexpected: verdict.unexpected.length,
      repeatedWrites: verdict.repeated.length,
      findings,
      durationMs: Date.now() - started,
      idle,
      ...(!idle && { busy }),
    };
    return summary;
  } finally {
    await engine.stop().catch(() => {});
    await instance?.stop().catch(() => {});
    if (options.keep || !summary?.ok) console.error(`soak: kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

/** Faults proper (status, after-write, drop), without the requests that were only delayed. */
function faultsProper(counts: FaultCounts): number {
  return ['status429', 'status500', 'status503', 'afterWrite', 'drop'].reduce(
    (sum, kind) => sum + (counts.byKind[kind] ?? 0),
    0,
  );
}

function printSummary(summary: SoakSummary): void {
  const kinds = Object.entries(summary.faults.byKind)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ');
  const lines = [
    `soak ${summary.servicenow ? 'over the connector ' : ''}${summary.ok ? 'PASSED' : 'FAILED'} (seed ${summary.seed})`,
    `  changes                ${summary.changes} across ${summary.accounts} accounts`,
    `  kills                  ${summary.kills} SIGKILLs, ${summary.restarts} restarts on the same database`,
    `  API calls              ${summary.faults.requests} (from the ${summary.servicenow ? "instance's" : "server's"} counters, lower bound)`,
    `  faults                 ${(summary.faults.share * 100).toFixed(1)}% of calls (asked ${summary.faultRate * 100}%): ${kinds}`,
    `  notifications replayed ${summary.notificationsReplayed}`,
    `  driver calls repeated  ${summary.driverRepeats}`,
    `  engine writes          ${summary.engineWrites} events by ${summary.servicenow ? 'the integration user (in the instance)' : ENGINE_USER}`,
    `  effects demanded       ${summary.expectedEffects}`,
    `  missed                 ${summary.missed}`,
    `  duplicated             ${summary.duplicated}`,
    `  unexpected             ${summary.unexpected}`,
    `  repeated writes        ${summary.repeatedWrites} (activity-log duplicates)`,
    `  duration               ${(summary.durationMs / 1000).toFixed(1)} s${summary.idle ? '' : ` (the engine never went idle: ${summary.busy})`}`,
    ...summary.findings.slice(0, 50).map((f) => `  ${f}`),
  ];
  console.log(lines.join('\n'));
}

async function main(argv: string[]): Promise<number> {
  let options: SoakOptions | 'help';
  try {
    options = parseOptions(argv);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`soak: ${error.message}\n\n${HELP}`);
      return 2;
    }
    throw error;
  }
  if (options === 'help') {
    console.log(HELP);
    return 0;
  }
  const summary = await soak(options);
  printSummary(summary);
  if (options.json) console.log(`SOAK-SUMMARY ${JSON.stringify(summary)}`);
  return summary.ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2)).catch((error) => {
  console.error(`soak: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  return 1;
});
