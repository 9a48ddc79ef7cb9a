// Runs rule test suites (src/engine/rule-suite.ts) through the engine as it runs in production:
// each case gets a fresh embedded ITSM API on 127.0.0.1 (in memory) and fresh engine stores; each
// step makes its change through the API as a person would, then the drain takes the events
// (evaluate, plan, execute, run record) until the engine's own writes have settled too, and a
// tick runs the named scheduled rules as the cron would. The engine's clock is the case's: the
// start of the case plus the step's `at`. http actions are never sent: a stand-in for the outside
// service answers them (the allow-list is still applied), so a suite pages no one.
import type { RuleSet } from '../engine/load.js';
import type { Plan } from '../engine/plan.js';
import { createRuleIndex } from '../engine/rule-index.js';
import {
  parseOffset,
  type RuleSuite,
  type SuiteCase,
  type SuiteChange,
  type SuiteStep,
} from '../engine/rule-suite.js';
import type { RunDetail } from '../engine/run-record.js';
import type { SecretLookup } from '../engine/secret.js';
import {
  type ActualCall,
  type ActualRule,
  compareStep,
  resolveNames,
  type StepResult,
} from '../engine/suite-expect.js';
import { createItsmClient, ItsmApiError, type ItsmClient } from '../itsm/client.js';
import { COLLECTION_PATHS, type ObjectType } from '../itsm/fields.js';
import { createSqliteEngineStore } from '../storage/sqlite-engine.js';
import { createSqlitePipelineStore } from '../storage/sqlite-pipeline.js';
import { DEFAULT_ENGINE_USER, drainAccount, type PipelineDeps } from '../webhook/drain.js';
import { runSchedules } from '../webhook/schedule.js';
import { loadMigrations, startItsmServer } from './node.js';

/** Drains after one step at most this often: each drain takes the events the one before caused. */
const MAX_DRAINS_PER_STEP = 20;

export interface SuiteRunOptions {
  ruleSet: RuleSet;
  /** Hosts http actions may call (`--http-allow`); a call to another host is planned, then refused. */
  httpAllow: readonly string[];
  /** Values of the rules' secrets (placeholders are fine: nothing is sent). */
  secrets: SecretLookup;
}

export interface CaseResult {
  file: string;
  name: string;
  passed: boolean;
  /** One line per difference (`step 2 (update inc at +10m): matched: ...`). */
  failures: string[];
  durationMs: number;
}

export async function runSuite(suite: RuleSuite, options: SuiteRunOptions): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  for (const suiteCase of suite.cases) {
    const started = performance.now();
    const failures = await runCase(suite, suiteCase, options);
    results.push({
      file: suite.file,
      name: suiteCase.name,
      passed: failures.length === 0,
      failures,
      durationMs: performance.now() - started,
    });
  }
  return results;
}

/** The rule set with only the named rules (the case's, else the suite's), indexed again. */
function rulesFor(ruleSet: RuleSet, names: readonly string[] | null): RuleSet {
  if (names === null) return ruleSet;
  const rules = ruleSet.rules.filter((rule) => names.includes(rule.id));
  return { rules, index: createRuleIndex(rules) };
}

async function runCase(
  suite: RuleSuite,
  suiteCase: SuiteCase,
  options: SuiteRunOptions,
): Promise<string[]> {
  const apiKey = `suite-${crypto.randomUUID()}`;
  const server = await startItsmServer({
    port: 0,
    host: '127.0.0.1',
    db: ':memory:',
    apiKey,
    appId: 'itsm-rules-test',
    log: () => {},
  });
  const migrations = loadMigrations();
  const engineStore = createSqliteEngineStore({ path: ':memory:', migrations });
  const pipelineStore = createSqlitePipelineStore({ path: ':memory:', migrations });
  const baseUrl = `${server.url}/v1`;
  const retry = { maxAttempts: 1 };
  const author = createItsmClient({ baseUrl, auth: { apiKey }, retry, rawData: true });
  const client = createItsmClient({
    baseUrl,
    auth: { apiKey },
    retry,
    asUser: DEFAULT_ENGINE_USER,
  });
  const start = Date.now();
  let clock = start;
  const ruleSet = rulesFor(options.ruleSet, suiteCase.rules);
  const deps: PipelineDeps = {
    client,
    engineStore,
    pipelineStore,
    rules: () => ruleSet,
    engineUser: DEFAULT_ENGINE_USER,
    now: () => clock,
    http: {
      allowHosts: options.httpAllow,
      secrets: options.secrets,
      maxAttempts: 1,
      // The outside service of an http action: a test run never calls it.
      fetch: async () =>
        new Response('{"ok":true,"note":"not sent: a rule test"}', { status: 200 }),
    },
  };
  const account = suite.account;
  const ids = new Map<string, string>();
  const types = new Map<string, { type: ObjectType; rawType: string | null }>();
  const failures: string[] = [];
  let lastRun = 0;
  try {
    for (const step of suiteCase.steps) {
      clock = start + step.atMs;
      const label = `step ${step.number} (${describeChange(step)})`;
      try {
        await makeChange(step.change, { author, client, account, ids, types, start, deps, clock });
      } catch (error) {
        failures.push(named(`${label}: the change could not be made: ${messageOf(error)}`, ids));
        break;
      }
      for (let drains = 0; drains < MAX_DRAINS_PER_STEP; drains++) {
        const drained = await drainAccount(deps, account);
        if (drained.events === 0) break;
      }
      const runs = (await pipelineStore.listRuns({ account, limit: 10_000 }))
        .filter((run) => run.id > lastRun)
        .sort((a, b) => a.id - b.id);
      lastRun = Math.max(lastRun, ...runs.map((run) => run.id));
      const result: StepResult = { rules: new Map(), calls: [], objects: {} };
      const errors: string[] = [];
      for (const run of runs) {
        const detail = JSON.parse(run.detail) as RunDetail;
        if (run.outcome === 'failed' && detail.rules.length === 0) {
          errors.push(
            `the engine failed on ${run.eventType} of ${run.objectType} ${run.objectId}: ${detail.reason ?? run.summary}`,
          );
        }
        for (const outcome of detail.rules) {
          const seen = result.rules.get(outcome.ruleId);
          const entry: ActualRule = {
            verdict: outcome.verdict,
            reason:
              outcome.reason ??
              (outcome.verdict === 'shadow'
                ? `in shadow mode: would have made ${outcome.shadowCalls?.length ?? 0} calls, none made`
                : null),
            details: outcome.details ?? [],
            correlation: outcome.correlation?.count ?? seen?.correlation ?? null,
          };
          // A rule that matched in any run of the step matched; else its first verdict says why.
          if (!seen || (outcome.verdict === 'matched' && seen.verdict !== 'matched')) {
            result.rules.set(outcome.ruleId, entry);
          } else if (entry.correlation !== null) {
            seen.correlation = entry.correlation;
          }
        }
        const stored = await engineStore.getPlan(run.key);
        if (stored) result.calls.push(...(JSON.parse(stored.body) as Plan).calls.map(toActualCall));
      }
      if (step.expect?.objects) {
        for (const name of Object.keys(step.expect.objects)) {
          result.objects[name] = await readObject(author, account, ids.get(name), types.get(name));
        }
      }
      const lines = [...errors, ...(step.expect ? compareStep(step.expect, result, ids) : [])];
      if (lines.length > 0)
        failures.push([`${label}:`, ...lines.map((line) => `  ${named(line, ids)}`)].join('\n'));
    }
  } finally {
    await engineStore.close();
    await pipelineStore.close();
    await server.close();
  }
  return failures;
}

interface ChangeContext {
  author: ItsmClient;
  client: ItsmClient;
  account: number;
  ids: Map<string, string>;
  types: Map<string, { type: ObjectType; rawType: string | null }>;
  start: number;
  deps: PipelineDeps;
  clock: number;
}

async function makeChange(change: SuiteChange, context: ChangeContext): Promise<void> {
  const { author, account, ids, types } = context;
  const collection = (type: ObjectType) =>
    `accounts/${account}/itsm/${COLLECTION_PATHS[type].plural}`;
  const fieldsOf = (fields: Record<string, unknown>) =>
    resolveNames(relativeTimes(fields, context.start), ids) as Record<string, unknown>;
  switch (change.kind) {
    case 'create': {
      const response = await author.request({
        method: 'POST',
        path: collection(change.type),
        ...(change.rawType !== null && { query: { raw_type: change.rawType } }),
        body: fieldsOf(change.fields),
      });
      const id = (response.body as { id?: unknown } | null)?.id;
      if (typeof id !== 'string') throw new Error(`the API answered the create without an id`);
      if (change.as !== null) {
        ids.set(change.as, id);
        types.set(change.as, { type: change.type, rawType: change.rawType });
      }
      return;
    }
    case 'update':
    case 'delete': {
      const id = ids.get(change.object) as string;
      const { type, rawType } = types.get(change.object) as {
        type: ObjectType;
        rawType: string | null;
      };
      await author.request({
        method: change.kind === 'update' ? 'PATCH' : 'DELETE',
        path: `${collection(type)}/${encodeURIComponent(id)}`,
        ...(rawType !== null && { query: { raw_type: rawType } }),
        ...(change.kind === 'update' && { body: fieldsOf(change.fields) }),
      });
      return;
    }
    case 'tick': {
      const rules = context.deps.rules().rules.filter((rule) => change.rules.includes(rule.id));
      await runSchedules(context.deps, {
        tick: new Date(context.clock),
        rules,
        accounts: [account],
      });
      return;
    }
  }
}

/** `{at: -2h}` in a change's fields: the time that far from the start of the case. */
function relativeTimes(value: unknown, start: number): unknown {
  if (Array.isArray(value)) return value.map((item) => relativeTimes(item, start));
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value);
  const only = entries.length === 1 ? entries[0] : undefined;
  if (only?.[0] === 'at' && typeof only[1] === 'string') {
    const offset = parseOffset(only[1]);
    if (offset !== null) return new Date(start + offset).toISOString();
  }
  return Object.fromEntries(entries.map(([key, item]) => [key, relativeTimes(item, start)]));
}

async function readObject(
  client: ItsmClient,
  account: number,
  id: string | undefined,
  type: { type: ObjectType; rawType: string | null } | undefined,
): Promise<Record<string, unknown> | null> {
  if (id === undefined || type === undefined) return null;
  try {
    const response = await client.request({
      method: 'GET',
      path: `accounts/${account}/itsm/${COLLECTION_PATHS[type.type].plural}/${encodeURIComponent(id)}`,
      ...(type.rawType !== null && { query: { raw_type: type.rawType } }),
    });
    return response.body as Record<string, unknown>;
  } catch (error) {
    if (error instanceof ItsmApiError && (error.status === 404 || error.status === 410))
      return null;
    throw error;
  }
}

function toActualCall(call: Plan['calls'][number]): ActualCall {
  if (call.kind === 'api') {
    return {
      rule: call.ruleId,
      kind: 'api',
      method: call.method,
      type: call.objectType,
      objectId: typeof call.objectId === 'string' ? call.objectId : null,
      target: call.path,
      body: call.body,
      message: null,
    };
  }
  if (call.kind === 'http') {
    return {
      rule: call.ruleId,
      kind: 'http',
      method: call.method.toUpperCase(),
      type: null,
      objectId: null,
      target: call.url,
      body: call.body,
      message: null,
    };
  }
  return {
    rule: call.ruleId,
    kind: 'log',
    method: null,
    type: null,
    objectId: null,
    target: null,
    body: null,
    message: call.message,
  };
}

function describeChange(step: SuiteStep): string {
  const at = step.atMs === 0 ? '' : ` at +${formatOffset(step.atMs)}`;
  const change = step.change;
  switch (change.kind) {
    case 'create':
      return `create ${change.type}${change.as === null ? '' : ` ${change.as}`}${at}`;
    case 'update':
      return `update ${change.object}${at}`;
    case 'delete':
      return `delete ${change.object}${at}`;
    case 'tick':
      return `tick ${change.rules.join(', ')}${at}`;
  }
}

function formatOffset(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms / 1000}s`;
}

/** The ids of named objects written as the suite names them ("${name}"), so a diff reads. */
function named(line: string, ids: ReadonlyMap<string, string>): string {
  let text = line;
  for (const [name, id] of ids) text = text.replaceAll(id, `\${${name}}`);
  return text;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
