// The engine's HTTP face, the same Hono app on Node and on Workers: the webhook receiver, the
// run records ("what happened to this incident, and why"), health, Prometheus metrics, and the
// admin actions (run the due schedules now, reload the rules, list and retry parked objects), and
// the operator console (src/console/). Everything but the receiver (which checks signatures),
// /healthz and the console (which has its own sign-in) needs the API key.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { registerConsole } from '../console/console.js';
import type { ConsoleSettings } from '../console/options.js';
import { parseDuration } from '../engine/duration.js';
import type { PreviewRequest, PreviewResult } from '../engine/replay.js';
import { renderRunDetail } from '../engine/run-record.js';
import { describeBadAccountId, distinctAccountIds, parseAccountId } from '../itsm/account-id.js';
import {
  type ParkedObject,
  type ParkedQuery,
  type PipelineStore,
  RUN_OUTCOMES,
  type RunOutcome,
  type RunQuery,
  type RunRecord,
} from '../storage/pipeline-port.js';
import { requireApiKey } from './auth.js';
import { createEngineErrorHandler, EngineHttpError, handleEngineNotFound } from './errors.js';
import type { EngineMetrics } from './metrics.js';
import { type EmbeddedApiDocument, engineOpenApi } from './openapi.js';
import { type ParkedRetryFilter, retryParkedNow } from './parked-retry.js';
import { type Receiver, registerReceiver } from './receiver.js';
import type { ScheduleRequest, ScheduleSummary } from './schedule.js';

/**
 * One thing /healthz reports as wrong: a stable `code`, a message saying what and what to do,
 * and details. A `blocking` problem means the engine cannot make progress (its writes fail):
 * /healthz then answers 503 so that a probe restarts or alerts; any other leaves it at 200,
 * `status: degraded`, since the engine still works (e.g. on the last good rule set).
 */
export interface HealthProblem {
  code: string;
  message: string;
  blocking?: boolean;
  [detail: string]: unknown;
}

export interface EngineAppOptions {
  /** The application API key first, older ones during a rotation: signatures and admin access. */
  keys: () => readonly string[];
  appId: string;
  pipelineStore: PipelineStore;
  metrics: EngineMetrics;
  /**
   * The webhook receiver (createReceiver): its enqueue must make a notification durable (or
   * queued) before it returns. Node serves the same one from its fast path too.
   */
  receiver: Receiver;
  runSchedules(request: ScheduleRequest): Promise<ScheduleSummary>;
  /** The impact preview of candidate rule files (engine/replay.ts); absent where not offered. */
  previewRules?(request: PreviewRequest): Promise<PreviewResult>;
  /** Reloads the rule files; absent where rules are bundled (Workers). */
  reloadRules?(): Promise<{ ok: boolean; rules: number; problems: string[] }>;
  /** What /healthz adds about the runtime (rules loaded, queue state). */
  health?(): Promise<Record<string, unknown>> | Record<string, unknown>;
  /** What is wrong now, for /healthz (none: `status: ok`); absent where nothing is watched. */
  problems?(): Promise<HealthProblem[]> | HealthProblem[];
  /** Brings the gauges up to date before /metrics renders them. */
  refreshMetrics?(): Promise<void>;
  log?: (line: string) => void;
  /** All-in-one: the embedded API's OpenAPI document, whose paths this server answers too. */
  embeddedApi?: EmbeddedApiDocument;
  /**
   * The rules loaded now: run records keep a false condition's context, not its explanation, and
   * /runs writes the lines against these (a rule changed since gets a line saying so).
   */
  rules?: () => LoadedRules;
  /** The operator console (`/` and /console/, src/console/): what the runtime knows for it. */
  console?: ConsoleSettings;
  /**
   * Starts a drain of each account now (POST /admin/parked/retry made parked objects of theirs
   * due): the Node queue, or a Queue message on Workers.
   */
  drainNow?(accounts: readonly number[]): Promise<void> | void;
  now?: () => number;
}

/**
 * Largest body an admin route reads (`/admin/schedules/run` takes a few rule ids and accounts).
 * Counted while reading, so a chunked body without Content-Length is cut off too.
 */
export const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export const DEFAULT_RUNS_PAGE_SIZE = 20;
export const MAX_RUNS_PAGE_SIZE = 100;
/** Parked objects GET /admin/parked lists at most, oldest parked first. */
export const MAX_PARKED_LISTED = 1000;

/** The limits /openapi.json states, from the constants the routes enforce. */
const OPENAPI_LIMITS = {
  runsPageSize: { default: DEFAULT_RUNS_PAGE_SIZE, max: MAX_RUNS_PAGE_SIZE },
  maxAdminBodyBytes: MAX_ADMIN_BODY_BYTES,
};

export function createEngineApp(options: EngineAppOptions): Hono {
  const app = new Hono({ strict: false });
  const rules = options.rules ?? NO_RULES;
  app.onError(createEngineErrorHandler(options.log ?? ((line) => console.error(line))));
  app.notFound(handleEngineNotFound);

  registerReceiver(app, options.receiver);

  app.get('/healthz', async (c) => {
    const problems = (await options.problems?.()) ?? [];
    const status = problems.length === 0 ? 'ok' : 'degraded';
    return c.json(
      {
        ok: status === 'ok',
        status,
        service: 'itsm-rules',
        app_id: options.appId,
        ...(await options.health?.()),
        problems: problems.map(({ blocking: _, ...problem }) => problem),
      },
      problems.some((problem) => problem.blocking) ? 503 : 200,
    );
  });
  app.get('/openapi.json', (c) =>
    c.json(engineOpenApi({ ...OPENAPI_LIMITS, embeddedApi: options.embeddedApi })),
  );

  const admin = requireApiKey(options.keys);
  app.use('/metrics', admin);
  app.use('/runs', admin);
  app.use('/runs/*', admin);
  app.use('/admin/*', admin);
  app.use(
    '/admin/*',
    bodyLimit({
      maxSize: MAX_ADMIN_BODY_BYTES,
      onError: () => {
        throw new EngineHttpError(
          413,
          'payload_too_large',
          `the body is larger than the limit of ${MAX_ADMIN_BODY_BYTES} bytes for an admin request`,
          // The unread rest of the body would stay on the socket: close it instead.
          { Connection: 'close' },
        );
      },
    }),
  );

  app.get('/metrics', async (c) => {
    await options.refreshMetrics?.();
    return c.body(options.metrics.render(), 200, {
      'Content-Type': 'text/plain; version=0.0.4; charset=utf-8',
    });
  });

  app.get('/runs', async (c) => {
    const params = new URL(c.req.url).searchParams;
    const query = parseRunQuery(params);
    // One run more than the page: whether there is a next page, without a count query.
    const runs = await options.pipelineStore.listRuns({ ...query, limit: query.limit + 1 });
    const page = runs.slice(0, query.limit);
    const last = runs.length > query.limit ? page.at(-1) : undefined;
    if (last) params.set('before', String(last.id));
    return c.json({
      type: 'run_list',
      count: page.length,
      objects: page.map((run) => renderRun(run, rules)),
      next_before: last ? last.id : null,
      next: last ? `/runs?${params.toString()}` : null,
    });
  });

  app.get('/runs/:id', async (c) => {
    const id = c.req.param('id');
    const run = /^\d+$/.test(id)
      ? await options.pipelineStore.getRunById(Number(id))
      : await options.pipelineStore.getRun(id);
    if (!run) throw new EngineHttpError(404, 'not_found', `no run ${JSON.stringify(id)}`);
    return c.json(renderRun(run, rules));
  });

  app.post('/admin/schedules/run', async (c) => {
    const request = parseScheduleRequest(await c.req.text());
    const summary = await options.runSchedules(request);
    return c.json(summary, summary.errors.length > 0 ? 207 : 200);
  });

  app.post('/admin/rules/reload', async (c) => {
    if (!options.reloadRules) {
      throw new EngineHttpError(
        404,
        'not_found',
        'rules are bundled at build time here; deploy again to change them',
      );
    }
    const result = await options.reloadRules();
    return c.json(result, result.ok ? 200 : 422);
  });

  app.post('/admin/rules/preview', async (c) => {
    if (!options.previewRules) {
      throw new EngineHttpError(
        404,
        'not_found',
        'the impact preview is not offered by this server; use itsm-rules replay',
      );
    }
    const result = await options.previewRules(parsePreviewRequest(await c.req.text()));
    if (!result.ok) {
      return c.json({ ok: false, rules: 0, problems: result.problems }, 422);
    }
    return c.json(result.report);
  });

  const retryParked = (filter: ParkedRetryFilter) =>
    retryParkedNow(
      {
        pipelineStore: options.pipelineStore,
        ...(options.drainNow && { drainNow: options.drainNow }),
        ...(options.now && { now: options.now }),
      },
      filter,
    );

  if (options.console) {
    registerConsole(app, {
      ...options.console,
      keys: options.keys,
      pipelineStore: options.pipelineStore,
      metrics: options.metrics,
      runSchedules: options.runSchedules,
      retryParked,
      ...(options.reloadRules && { reloadRules: options.reloadRules }),
    });
  }

  app.get('/admin/parked', async (c) => {
    const query = parseParkedFilter(new URL(c.req.url).searchParams);
    const parked = await options.pipelineStore.listParked({ ...query, limit: MAX_PARKED_LISTED });
    return c.json({ type: 'parked_list', count: parked.length, objects: parked.map(renderParked) });
  });

  app.post('/admin/parked/retry', async (c) => {
    const due = await retryParked(parseParkedRetry(await c.req.text()));
    return c.json({ retried: due.length, objects: due.map(renderParked) });
  });

  // A path that exists answers any other method with 405 and what it allows, not 404.
  const onlyMethod: [allowed: string, paths: string[]][] = [
    ['GET', ['/healthz', '/openapi.json', '/metrics', '/runs', '/runs/:id', '/admin/parked']],
    [
      'POST',
      [
        '/admin/schedules/run',
        '/admin/rules/reload',
        '/admin/rules/preview',
        '/admin/parked/retry',
      ],
    ],
  ];
  for (const [allowed, paths] of onlyMethod) {
    for (const path of paths) {
      app.all(path, () => {
        throw new EngineHttpError(405, 'method_not_allowed', `use ${allowed}`, { Allow: allowed });
      });
    }
  }
  return app;
}

const RUN_QUERY_PARAMS = [
  'account',
  'object_id',
  'object_number',
  'rule_id',
  'matched',
  'outcome',
  'rule_version',
  'before',
  'page_size',
];

/**
 * An admin route's JSON body: an object with no field beyond `fields`, or a 400 that says which
 * rule it broke (`notJson` followed by the parser's message, `notObject`, or the unknown field).
 */
function jsonObjectBody(
  text: string,
  messages: { notJson: string; notObject: string },
  fields: readonly string[],
): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new EngineHttpError(
      400,
      'invalid_parameters',
      `${messages.notJson}: ${(error as Error).message}`,
    );
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new EngineHttpError(400, 'invalid_parameters', messages.notObject);
  }
  const unknown = Object.keys(body).filter((key) => !fields.includes(key));
  if (unknown.length > 0) {
    throw new EngineHttpError(
      400,
      'invalid_parameters',
      `unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')}; use ${fields.join(', ')}`,
    );
  }
  return body as Record<string, unknown>;
}

/** A 400 naming the first query parameter that is not among `allowed`, and the ones that are. */
function onlyParams(params: URLSearchParams, allowed: readonly string[]): void {
  for (const name of params.keys()) {
    if (!allowed.includes(name)) {
      throw new EngineHttpError(
        400,
        'invalid_parameters',
        `unknown query parameter ${JSON.stringify(name)}; use ${allowed.join(', ')}`,
      );
    }
  }
}

/** The `account` query parameter: absent, or an account id (a 400 saying why otherwise). */
function accountParam(params: URLSearchParams): number | undefined {
  const text = params.get('account');
  if (text === null) return undefined;
  const account = parseAccountId(text);
  if (account === null) {
    throw new EngineHttpError(400, 'invalid_parameters', describeBadAccountId('account', text));
  }
  return account;
}

function parseRunQuery(params: URLSearchParams): RunQuery {
  onlyParams(params, RUN_QUERY_PARAMS);
  const whole = (name: string, min: number, max: number): number | undefined => {
    const text = params.get(name);
    if (text === null) return undefined;
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      throw new EngineHttpError(
        400,
        'invalid_parameters',
        `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
      );
    }
    return value;
  };
  const outcome = params.get('outcome');
  if (outcome !== null && !(RUN_OUTCOMES as readonly string[]).includes(outcome)) {
    throw new EngineHttpError(
      400,
      'invalid_parameters',
      `outcome must be one of ${RUN_OUTCOMES.join(', ')}, got ${JSON.stringify(outcome)}`,
    );
  }
  const matched = params.get('matched');
  if (matched !== null && matched !== 'true' && matched !== 'false') {
    throw new EngineHttpError(
      400,
      'invalid_parameters',
      `matched must be true or false, got ${JSON.stringify(matched)}`,
    );
  }
  if (matched !== null && !params.has('rule_id')) {
    throw new EngineHttpError(
      400,
      'invalid_parameters',
      'matched filters the runs of one rule: give rule_id too (for runs where no rule matched, use outcome=no_match)',
    );
  }
  const account = accountParam(params);
  const ruleVersion = params.get('rule_version');
  if (ruleVersion !== null && !/^[0-9a-f]{7,64}$/.test(ruleVersion)) {
    throw new EngineHttpError(
      400,
      'invalid_parameters',
      `rule_version must be a rule set version (lower-case hex, 7 to 64 characters: a run record's rule_version or its start), got ${JSON.stringify(ruleVersion)}`,
    );
  }
  const before = whole('before', 1, Number.MAX_SAFE_INTEGER);
  const objectId = params.get('object_id');
  const objectNumber = params.get('object_number');
  const ruleId = params.get('rule_id');
  return {
    ...(account !== undefined && { account }),
    ...(objectId !== null && { objectId }),
    ...(objectNumber !== null && { objectNumber }),
    ...(ruleId !== null && { ruleId }),
    ...(matched !== null && { matched: matched === 'true' }),
    ...(outcome !== null && { outcome: outcome as RunOutcome }),
    ...(ruleVersion !== null && { ruleVersion }),
    ...(before !== undefined && { before }),
    limit: whole('page_size', 1, MAX_RUNS_PAGE_SIZE) ?? DEFAULT_RUNS_PAGE_SIZE,
  };
}

function parsePreviewRequest(text: string): PreviewRequest {
  const bad = (message: string): never => {
    throw new EngineHttpError(400, 'invalid_parameters', message);
  };
  const { files, since, accounts } = jsonObjectBody(
    text,
    {
      notJson: 'the body must be JSON {files, since?, accounts?}',
      notObject: 'the body must be a JSON object {files, since?, accounts?}',
    },
    ['files', 'since', 'accounts'],
  );
  if (
    !Array.isArray(files) ||
    files.length === 0 ||
    !files.every(
      (file) =>
        file !== null &&
        typeof file === 'object' &&
        typeof (file as Record<string, unknown>).path === 'string' &&
        typeof (file as Record<string, unknown>).text === 'string',
    )
  ) {
    bad('files must be a non-empty list of {path, text}: the candidate rule files');
  }
  const sinceText = since === undefined ? '7d' : since;
  const sinceMs = typeof sinceText === 'string' ? parseDuration(sinceText) : null;
  if (sinceMs === null) {
    bad(`since must be a duration such as 30m, 12h or 7d, got ${JSON.stringify(since)}`);
  }
  let ids: number[] | undefined;
  if (accounts !== undefined) {
    if (!Array.isArray(accounts))
      bad(`accounts must be a list of account ids, got ${JSON.stringify(accounts)}`);
    ids = (accounts as unknown[]).map((account, index) => {
      const id = parseAccountId(account);
      if (id === null) bad(describeBadAccountId(`accounts[${index}]`, account));
      return id as number;
    });
  }
  return {
    files: (files as { path: string; text: string }[]).map(({ path, text }) => ({ path, text })),
    sinceMs: sinceMs as number,
    ...(ids && { accounts: distinctAccountIds(ids) }),
  };
}

const PARKED_QUERY_PARAMS = ['account', 'object_id'];

function parseParkedFilter(params: URLSearchParams): Pick<ParkedQuery, 'account' | 'objectId'> {
  onlyParams(params, PARKED_QUERY_PARAMS);
  const account = accountParam(params);
  const objectId = params.get('object_id');
  return {
    ...(account !== undefined && { account }),
    ...(objectId !== null && { objectId }),
  };
}

/** The body of POST /admin/parked/retry: nothing (every parked object), {id}, or {account, object_id}. */
function parseParkedRetry(text: string): ParkedRetryFilter {
  if (text.trim() === '') return {};
  const shape = 'a JSON object {id?, account?, object_id?} (empty: every parked object)';
  const {
    id,
    account,
    object_id: objectId,
  } = jsonObjectBody(
    text,
    { notJson: `the body must be ${shape}`, notObject: `the body must be ${shape}` },
    ['id', 'account', 'object_id'],
  );
  const filter: ParkedRetryFilter = {};
  if (id !== undefined) {
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
      throw new EngineHttpError(
        400,
        'invalid_parameters',
        `id must be the id of a parked object (a whole number from GET /admin/parked), got ${JSON.stringify(id)}`,
      );
    }
    filter.id = id;
  }
  if (account !== undefined) {
    const parsed = parseAccountId(account);
    if (parsed === null) {
      throw new EngineHttpError(
        400,
        'invalid_parameters',
        describeBadAccountId('account', account),
      );
    }
    filter.account = parsed;
  }
  if (objectId !== undefined) {
    if (typeof objectId !== 'string' || objectId === '') {
      throw new EngineHttpError(
        400,
        'invalid_parameters',
        `object_id must be the id of an object (a non-empty string), got ${JSON.stringify(objectId)}`,
      );
    }
    filter.objectId = objectId;
  }
  return filter;
}

export function renderParked(parked: ParkedObject) {
  return {
    id: parked.id,
    account: parked.account,
    object: { type: parked.objectType, id: parked.objectId },
    parked_at: new Date(parked.parkedAt).toISOString(),
    attempts: parked.attempts,
    next_retry_at: new Date(parked.nextAt).toISOString(),
    error: parked.error,
    events: parked.events,
  };
}

function parseScheduleRequest(text: string): ScheduleRequest {
  if (text.trim() === '') return {};
  const { rules, at, accounts } = jsonObjectBody(
    text,
    {
      notJson: 'the body must be JSON {rules?, at?, accounts?}',
      notObject: 'the body must be a JSON object {rules?, at?, accounts?}',
    },
    ['rules', 'at', 'accounts'],
  );
  const request: ScheduleRequest = {};
  if (rules !== undefined) {
    if (!Array.isArray(rules) || !rules.every((r) => typeof r === 'string')) {
      throw new EngineHttpError(400, 'invalid_parameters', 'rules must be a list of rule ids');
    }
    request.rules = rules;
  }
  if (at !== undefined) {
    const date = typeof at === 'string' ? new Date(at) : null;
    if (!date || Number.isNaN(date.getTime())) {
      throw new EngineHttpError(
        400,
        'invalid_parameters',
        `at must be an ISO 8601 time such as 2026-11-28T10:15:00Z, got ${JSON.stringify(at)}`,
      );
    }
    request.at = date;
  }
  if (accounts !== undefined) {
    if (!Array.isArray(accounts)) {
      throw new EngineHttpError(
        400,
        'invalid_parameters',
        `accounts must be a list of account ids, got ${JSON.stringify(accounts)}`,
      );
    }
    const ids = accounts.map(parseAccountId);
    const bad = ids.indexOf(null);
    if (bad >= 0) {
      throw new EngineHttpError(
        400,
        'invalid_parameters',
        describeBadAccountId(`accounts[${bad}]`, accounts[bad]),
      );
    }
    request.accounts = distinctAccountIds(ids as number[]);
  }
  return request;
}

/** The part of a rule set /runs reads: each rule's id and condition. */
type LoadedRules = Parameters<typeof renderRunDetail>[1] extends () => infer R ? R : never;

const NO_RULES: () => LoadedRules = () => ({ rules: [] });

export function renderRun(run: RunRecord, rules: () => LoadedRules = NO_RULES) {
  return {
    id: run.id,
    key: run.key,
    account: run.account,
    event: { id: run.eventId, type: run.eventType },
    object:
      run.objectId === null
        ? null
        : { type: run.objectType, id: run.objectId, number: run.objectNumber ?? null },
    self_hops: run.selfHops,
    outcome: run.outcome,
    rule_version: run.ruleVersion ?? null,
    rules: run.rules,
    verdicts: run.verdicts,
    summary: run.summary,
    at: new Date(run.at).toISOString(),
    detail: renderRunDetail(run.detail, rules),
  };
}
