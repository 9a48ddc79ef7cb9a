/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The operator console's routes, on the engine's own app (Node and Workers alike): the overview
// at `/`, the other pages under /console/, its assets, sign-in and sign-out, and the
// operator's actions. Every page needs a session (a signed cookie from signing in with the API
// key, src/console/session.ts); every POST but sign-in needs the session's CSRF token and a
// same-origin request. Every answer carries the security headers (a CSP without inline scripts,
// no framing, no referrer).
import type { Context, Hono, MiddlewareHandler } from 'hono';
import { objectNumberOf } from '../engine/run-record.js';
import { timingSafeEqual } from '../itsm/signature.js';
import { drainLagMs, isPending } from '../storage/drain-lag.js';
import type { ParkedObject, PipelineStore, RunRecord } from '../storage/pipeline-port.js';
import { CONSOLE_CSS, CONSOLE_ICON, CONSOLE_JS, CSS_PATH, ICON_PATH, JS_PATH } from './assets.js';
import { ObjectPage } from './object-page.js';
import type { ConsoleOptions } from './options.js';
import { type AccountLine, OverviewPage, type RuleHours } from './overview-page.js';
import { type ParkedLine, RETRY_PARKED_PATH } from './parked.js';
import { type RuleCounts, RulePage, RulesPage } from './rules-page.js';
import { RunPage, selfHopChain } from './run-page.js';
import { parseRunFilters, RUNS_PAGE_SIZE, RunRows, RunsPage } from './runs-page.js';
import {
  createSession,
  DEFAULT_SESSION_TTL_MS,
  readSession,
  type Session,
  sessionCookie,
  sessionCookieOf,
} from './session.js';
import { MessagePage, SignInPage } from './sign-in-page.js';

export const SIGN_IN_PATH = '/console/sign-in';

/** The console's paths: HTML for people, not part of the engine's documented JSON API. */
export function isConsolePath(path: string): boolean {
  return path === '/' || path.startsWith('/console/');
}
const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;
/** The object timeline shows at most this many runs (the latest). */
const TIMELINE_RUNS = 200;
/** The overview lists this many parked objects (the longest parked); Retry all takes every one. */
const PARKED_SHOWN = 50;
/** Parked objects counted for the overview and the Runs page; beyond, the count says `1000+`. */
const PARKED_COUNTED = 1000;
/** Where a retry form may send the operator back to: the overview or an object's timeline. */
const RETRY_BACK = /^\/$|^\/console\/objects\/[^/?#\\]+(\?account=\d{1,15})?$/;
/** A form body is a token and a few words: anything larger is not the console's. */
const MAX_FORM_BYTES = 8 * 1024;

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'no-store',
};

type Env = { Variables: { session: Session } };

export function registerConsole(app: Hono, options: ConsoleOptions): void {
  const now = options.now ?? Date.now;
  const ttlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  const ui = app as unknown as Hono<Env>;

  const headers: MiddlewareHandler = async (c, next) => {
    await next();
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) {
      if (!c.res.headers.has(name)) c.res.headers.set(name, value);
    }
  };
  ui.use('/', headers);
  ui.use('/console/*', headers);

  const asset = (path: string, body: string, type: string) =>
    ui.get(path, (c) =>
      c.body(body, 200, {
        'Content-Type': type,
        // The path holds the content's fingerprint: a new version is a new URL.
        'Cache-Control': 'public, max-age=31536000, immutable',
      }),
    );
  asset(CSS_PATH, CONSOLE_CSS, 'text/css; charset=utf-8');
  asset(JS_PATH, CONSOLE_JS, 'text/javascript; charset=utf-8');
  asset(ICON_PATH, CONSOLE_ICON, 'image/svg+xml');

  /**
   * The origin the browser sees. Behind a proxy that ends TLS (nginx, a load balancer), the
   * request reaches the engine as plain HTTP and the proxy says what it was in X-Forwarded-Proto
   * and X-Forwarded-Host. Trusting them is safe here: a page on another site cannot set them on
   * a form it posts, so they never let a cross-site request pass the origin check (and the CSRF
   * token is needed anyway); at worst a client marks its own cookie Secure.
   */
  const publicOrigin = (c: Context): string => {
    const url = new URL(c.req.url);
    const proto = forwarded(c.req.header('X-Forwarded-Proto'))?.toLowerCase();
    const host = forwarded(c.req.header('X-Forwarded-Host'));
    const protocol = proto === 'https' || proto === 'http' ? `${proto}:` : url.protocol;
    return `${protocol}//${host ?? url.host}`;
  };
  const secure = (c: Context) => publicOrigin(c).startsWith('https:');
  const toSignIn = (c: Context, expired: boolean) => {
    c.header('Set-Cookie', sessionCookie(null, { secure: secure(c), maxAgeSeconds: 0 }));
    return c.redirect(expired ? `${SIGN_IN_PATH}?expired=1` : SIGN_IN_PATH, 303);
  };

  /**
   * Same-origin only. A browser names where a form came from in Origin, except that under
   * Referrer-Policy: no-referrer (ours) it sends `Origin: null`; then Sec-Fetch-Site, which
   * browsers send whatever the policy, says it. A client that sends neither is not a browser a
   * page could drive, and the CSRF token still has to match.
   */
  const sameOrigin = (c: Context): boolean => {
    const origin = c.req.header('Origin');
    if (origin !== undefined && origin !== 'null') {
      return origin === new URL(c.req.url).origin || origin === publicOrigin(c);
    }
    const site = c.req.header('Sec-Fetch-Site');
    if (site !== undefined) return site === 'same-origin';
    return origin === undefined;
  };

  const readForm = async (c: Context): Promise<URLSearchParams | null> => {
    const type = c.req.header('Content-Type') ?? '';
    if (!type.startsWith('application/x-www-form-urlencoded')) return null;
    // Read as bytes: workerd warns on every text() of a body that is not typed as text.
    const bytes = await c.req.arrayBuffer();
    if (bytes.byteLength > MAX_FORM_BYTES) return null;
    return new URLSearchParams(new TextDecoder().decode(bytes));
  };

  const refuse = (c: Context, status: 400 | 403, message: string, csrf?: string) =>
    c.html(
      <MessagePage title="Not done" message={message} {...(csrf !== undefined && { csrf })} />,
      status,
    );

  ui.get(SIGN_IN_PATH, (c) => {
    const expired = c.req.query('expired') !== undefined;
    return c.html(
      <SignInPage {...(expired && { message: 'Your session has ended: sign in again.' })} />,
    );
  });

  ui.post(SIGN_IN_PATH, async (c) => {
    if (!sameOrigin(c)) return refuse(c, 403, "Sign in from the console's own page.");
    const form = await readForm(c);
    const key = form?.get('key') ?? '';
    const keys = options.keys();
    // Every key is compared, so timing does not tell which one matched.
    let matched = false;
    for (const candidate of keys) {
      if (candidate !== '' && timingSafeEqual(key, candidate)) matched = true;
    }
    if (!matched) {
      return c.html(
        <SignInPage
          bad
          message="That is not the engine's API key. Check ITSM_API_KEY and try again."
        />,
        401,
      );
    }
    // Signed with the current key, whichever key was typed: an old key ends with its rotation.
    const { value } = await createSession(keys[0] as string, now(), ttlMs);
    c.header(
      'Set-Cookie',
      sessionCookie(value, { secure: secure(c), maxAgeSeconds: ttlMs / 1000 }),
    );
    return c.redirect('/', 303);
  });

  // Everything else of the console needs a session; a POST, its CSRF token too.
  const requireSession: MiddlewareHandler<Env> = async (c, next) => {
    const path = c.req.path;
    if (path === SIGN_IN_PATH || path.startsWith('/console/assets/')) return next();
    const cookie = sessionCookieOf(c.req.header('Cookie'));
    if (cookie === null) return toSignIn(c, false);
    const session = await readSession(cookie, options.keys(), now());
    if (session === 'invalid' || session === 'expired') return toSignIn(c, true);
    c.set('session', session);
    if (c.req.method === 'POST') {
      if (!sameOrigin(c)) {
        return refuse(
          c,
          403,
          'This form was sent from another site: nothing was done.',
          session.csrf,
        );
      }
      const form = await readForm(c);
      const token = form?.get('_csrf') ?? '';
      if (!timingSafeEqual(token, session.csrf)) {
        return refuse(
          c,
          403,
          'This form is out of date (its security token does not match your session): nothing was done. Reload the page and try again.',
          session.csrf,
        );
      }
    }
    return next();
  };
  ui.use('/', requireSession);
  ui.use('/console/*', requireSession);

  ui.post('/console/sign-out', (c) => toSignIn(c, false));

  ui.get('/', async (c) =>
    renderOverview(c, options, now(), retriedNotice(c.req.query('retried'))),
  );

  ui.post('/console/actions/run-schedules', async (c) => {
    const summary = await options.runSchedules({});
    const bad = summary.errors.length > 0;
    return renderOverview(c, options, now(), {
      text: `Scheduled rules run at ${summary.tick}: ${summary.objects} objects looked at${bad ? `, ${summary.errors.length} errors` : ''}.`,
      bad,
      lines: [...summary.errors, ...summary.notes],
    });
  });

  ui.post('/console/actions/reload-rules', async (c) => {
    if (!options.reloadRules) {
      return refuse(
        c,
        400,
        'The rules are bundled with this deployment: deploy again to change them.',
        c.get('session').csrf,
      );
    }
    const result = await options.reloadRules();
    return renderOverview(
      c,
      options,
      now(),
      result.ok
        ? { text: `Rules reloaded: ${result.rules} rules.`, bad: false }
        : {
            text: `Rules NOT reloaded: the last good set (${result.rules} rules) still runs. Fix these problems:`,
            bad: true,
            lines: result.problems,
          },
    );
  });

  // Retry parked work now: what POST /admin/parked/retry does (one object by `id`, or all), then
  // back to the page the form was on (Post/Redirect/Get), which says how many were retried.
  ui.post(RETRY_PARKED_PATH, async (c) => {
    const csrf = c.get('session').csrf;
    const form = (await readForm(c)) ?? new URLSearchParams();
    const idText = (form.get('id') ?? '').trim();
    const back = form.get('back') ?? '/';
    if (idText !== '' && !/^[1-9]\d{0,14}$/.test(idText)) {
      return refuse(
        c,
        400,
        `id must be the number of a parked object (a whole number, as the overview's parked-work list gives it), not "${idText}": nothing was retried.`,
        csrf,
      );
    }
    if (!RETRY_BACK.test(back)) {
      return refuse(
        c,
        400,
        `back must be the console page the form was on (/ or an object's timeline), not "${back}": nothing was retried.`,
        csrf,
      );
    }
    const due = await options.retryParked(idText === '' ? {} : { id: Number(idText) });
    const hash = back === '/' ? '#parked-work' : '';
    return c.redirect(`${back}${back.includes('?') ? '&' : '?'}retried=${due.length}${hash}`, 303);
  });

  ui.get('/console/runs', async (c) => {
    const filters = parseRunFilters(new URL(c.req.url).searchParams);
    const runs =
      filters.errors.length > 0
        ? []
        : await options.pipelineStore.listRuns({ ...filters.query, limit: RUNS_PAGE_SIZE + 1 });
    const page = runs.slice(0, RUNS_PAGE_SIZE);
    const nextBefore = runs.length > RUNS_PAGE_SIZE ? (page.at(-1)?.id ?? null) : null;
    const parked = await options.pipelineStore.listParked({ limit: PARKED_COUNTED + 1 });
    return c.html(
      <RunsPage
        csrf={c.get('session').csrf}
        parked={{
          total: Math.min(parked.length, PARKED_COUNTED),
          more: parked.length > PARKED_COUNTED,
        }}
        filters={filters}
        runs={page}
        nextBefore={nextBefore}
        ruleIds={options.rules().ruleSet.rules.map((rule) => rule.id)}
      />,
      filters.errors.length > 0 ? 400 : 200,
    );
  });

  // The rows of runs newer than `after`, for the live list; X-Newest-Run is the newest id seen.
  ui.get('/console/runs/rows', async (c) => {
    const params = new URL(c.req.url).searchParams;
    const afterText = params.get('after') ?? '0';
    params.delete('after');
    const filters = parseRunFilters(params);
    if (!/^\d{1,15}$/.test(afterText)) {
      filters.errors.push(`after must be a run number such as 120, not "${afterText}"`);
    }
    if (filters.errors.length > 0) return c.text(filters.errors.join('\n'), 400);
    const after = Number(afterText);
    const runs = await options.pipelineStore.listRuns({ ...filters.query, limit: RUNS_PAGE_SIZE });
    const fresh = runs.filter((run) => run.id > after);
    c.header('X-Newest-Run', String(Math.max(after, fresh[0]?.id ?? 0)));
    return c.html(<RunRows runs={fresh} fresh />);
  });

  ui.get('/console/runs/:id', async (c) => {
    const id = c.req.param('id');
    const run = /^\d{1,15}$/.test(id) ? await options.pipelineStore.getRunById(Number(id)) : null;
    const csrf = c.get('session').csrf;
    if (!run) {
      return c.html(
        <MessagePage
          csrf={csrf}
          title="No such run"
          message={`There is no run #${id} (runs are kept for 30 days by default).`}
        />,
        404,
      );
    }
    let chain: RunRecord[] = [run];
    if (run.objectId !== null) {
      // By object id alone, which its index answers newest first; the account is checked after
      // (a filter on both could make SQLite walk the account's runs instead).
      const [around, earlier] = await Promise.all([
        options.pipelineStore.listRuns({ objectId: run.objectId, limit: 50 }),
        options.pipelineStore.listRuns({ objectId: run.objectId, before: run.id, limit: 20 }),
      ]);
      const same = [...around, ...earlier].filter((other) => other.account === run.account);
      chain = selfHopChain(run, uniqueRuns([...same, run]));
    }
    return c.html(
      <RunPage csrf={csrf} run={run} chain={chain} rules={() => options.rules().ruleSet} />,
    );
  });

  ui.get('/console/objects/:id', async (c) => {
    const objectId = c.req.param('id');
    const accountText = c.req.query('account');
    const account =
      accountText !== undefined && /^\d{1,15}$/.test(accountText) ? Number(accountText) : undefined;
    // By object id alone (its index); the account is checked after, as for a run's chain.
    const [all, parked] = await Promise.all([
      options.pipelineStore.listRuns({ objectId, limit: TIMELINE_RUNS + 1 }),
      options.pipelineStore.listParked({
        objectId,
        ...(account !== undefined && { account }),
        limit: 10,
      }),
    ]);
    const runs = all.filter((run) => account === undefined || run.account === account);
    const shown = runs.slice(0, TIMELINE_RUNS).reverse();
    const back = `/console/objects/${encodeURIComponent(objectId)}${account === undefined ? '' : `?account=${account}`}`;
    const notice = retriedNotice(c.req.query('retried'));
    return c.html(
      <ObjectPage
        csrf={c.get('session').csrf}
        now={now()}
        parked={parked}
        back={back}
        {...(notice && { notice })}
        objectId={objectId}
        runs={shown}
        truncated={runs.length > TIMELINE_RUNS}
      />,
    );
  });

  ui.get('/console/rules', async (c) => {
    const state = options.rules();
    const counts = await countsByRule(options, now());
    const lastMatched = new Map<string, number>();
    await Promise.all(
      state.ruleSet.rules.map(async (rule) => {
        const [last] = await options.pipelineStore.listRuns({
          ruleId: rule.id,
          matched: true,
          limit: 1,
        });
        if (last) lastMatched.set(rule.id, last.at);
      }),
    );
    return c.html(
      <RulesPage
        csrf={c.get('session').csrf}
        rules={state.ruleSet.rules}
        counts={counts}
        lastMatched={lastMatched}
        warnings={state.warnings}
        source={state.source}
      />,
    );
  });

  ui.get('/console/rules/:id', async (c) => {
    const state = options.rules();
    const id = c.req.param('id');
    const rule = state.ruleSet.rules.find((r) => r.id === id);
    const csrf = c.get('session').csrf;
    if (!rule) {
      return c.html(
        <MessagePage
          csrf={csrf}
          title="No such rule"
          message={`The running rule set has no rule "${id}".`}
        />,
        404,
      );
    }
    const [counts, runs] = await Promise.all([
      countsByRule(options, now(), [id]),
      options.pipelineStore.listRuns({ ruleId: id, limit: 20 }),
    ]);
    return c.html(
      <RulePage
        csrf={csrf}
        rule={rule}
        text={state.ruleSet.sources?.find((source) => source.path === rule.file)?.text ?? null}
        counts={counts.get(id) ?? { matched: 0, failed: 0 }}
        warnings={state.warnings.filter((w) => w.file === rule.file)}
        runs={runs}
      />,
    );
  });
}

/** The notice after a retry, from the count its redirect carries (anything else: none). */
function retriedNotice(text: string | undefined): Notice | undefined {
  if (text === undefined || !/^\d{1,9}$/.test(text)) return undefined;
  const count = Number(text);
  if (count === 0) {
    return {
      text: 'Nothing was retried: nothing selected is parked any more (its retry may have finished already).',
      bad: false,
    };
  }
  return {
    text: `Retried ${count} parked object${count === 1 ? '' : 's'} now: ${count === 1 ? 'its' : 'their'} waiting events are processed again, in order. Reload to see how it went.`,
    bad: false,
  };
}

/** The parked objects the overview shows, each with its number when one of its runs has it. */
async function parkedLines(
  store: PipelineStore,
  parked: readonly ParkedObject[],
): Promise<ParkedLine[]> {
  return Promise.all(
    parked.map(async (object) => {
      // A parked run has no number (the object was not read); an earlier run of it may, and
      // else the waiting event holds the object as the API listed it. A few runs are enough
      // (each read is a whole record, times 50 objects).
      const runs = await store.listRuns({ objectId: object.objectId, limit: 5 });
      const named = runs.find((run) => run.account === object.account && run.objectNumber);
      if (named?.objectNumber) return { parked: object, number: named.objectNumber };
      const [event] = await store.parkedEvents(object.account, object.objectId);
      return { parked: object, number: event ? numberOfEvent(event.body) : null };
    }),
  );
}

function numberOfEvent(body: string): string | null {
  try {
    const metadata = (JSON.parse(body) as { metadata?: unknown }).metadata;
    return metadata !== null && typeof metadata === 'object'
      ? objectNumberOf(metadata as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

type Notice = { text: string; bad: boolean; lines?: readonly string[] };

function uniqueRuns(runs: readonly RunRecord[]): RunRecord[] {
  return [...new Map(runs.map((run) => [run.id, run])).values()];
}

/** Matched and failed counts over the last 24 hours of each rule (of `ruleIds`: those only). */
async function countsByRule(
  options: ConsoleOptions,
  now: number,
  ruleIds?: readonly string[],
): Promise<Map<string, RuleCounts>> {
  const counts = new Map<string, RuleCounts>();
  const cells = await options.pipelineStore.ruleActivity({
    ruleIds: ruleIds ?? options.rules().ruleSet.rules.map((rule) => rule.id),
    since: now - DAY_MS,
    bucketMs: DAY_MS,
  });
  for (const cell of cells) {
    const entry = counts.get(cell.ruleId) ?? { matched: 0, failed: 0 };
    entry[cell.verdict] += cell.runs;
    counts.set(cell.ruleId, entry);
  }
  return counts;
}

async function renderOverview(
  c: Context<Env>,
  options: ConsoleOptions,
  now: number,
  notice?: Notice,
) {
  const state = options.rules();
  // 24 whole hours ending with the current one, so that each bar is one clock hour.
  const since = Math.floor(now / HOUR_MS) * HOUR_MS - 23 * HOUR_MS;
  const [activity, failing, accounts, parked] = await Promise.all([
    options.pipelineStore.ruleActivity({
      ruleIds: state.ruleSet.rules.map((rule) => rule.id),
      since,
      bucketMs: HOUR_MS,
    }),
    options.pipelineStore.listRuns({ outcome: 'failed', limit: 10 }),
    options.pipelineStore.listAccounts(),
    options.pipelineStore.listParked({ limit: PARKED_COUNTED + 1 }),
  ]);
  const shownParked = await parkedLines(options.pipelineStore, parked.slice(0, PARKED_SHOWN));
  const byRule = new Map<string, RuleHours>(
    state.ruleSet.rules.map((rule) => [
      rule.id,
      { rule, hits: new Array<number>(24).fill(0), failures: new Array<number>(24).fill(0) },
    ]),
  );
  for (const cell of activity) {
    const hours = byRule.get(cell.ruleId);
    if (!hours || cell.bucket < 0 || cell.bucket > 23) continue;
    if (cell.verdict === 'matched') hours.hits[cell.bucket] = cell.runs;
    if (cell.verdict === 'failed') hours.failures[cell.bucket] = cell.runs;
  }
  const lines: AccountLine[] = accounts.map((account) => {
    const remaining = options.metrics.eventsRemaining.value({ account: String(account.account) });
    return {
      state: account,
      lagMs: drainLagMs(account, now),
      // The count is of the last page read: a notification since may have brought more.
      remaining: isPending(account) && remaining === 0 ? null : remaining,
    };
  });
  return c.html(
    <OverviewPage
      csrf={c.get('session').csrf}
      now={now}
      rules={state}
      apiUrl={options.apiUrl}
      hours={[...byRule.values()]}
      failing={failing}
      accounts={lines}
      parked={{
        lines: shownParked,
        total: Math.min(parked.length, PARKED_COUNTED),
        more: parked.length > PARKED_COUNTED,
      }}
      canReload={options.reloadRules !== undefined}
      {...(notice && { notice })}
      // An action's answer (a notice) is the overview: a reload must not send the form again.
      {...(notice && c.req.method === 'POST' && { location: '/' })}
    />,
  );
}

/** The first value of a proxy's X-Forwarded-* header (proxies in a chain append theirs). */
function forwarded(value: string | undefined): string | undefined {
  const first = value?.split(',')[0]?.trim();
  return first ? first : undefined;
}
