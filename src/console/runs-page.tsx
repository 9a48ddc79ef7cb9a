/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The Runs page: run records newest first, filtered by object (its number, INC0010001, or its
// id), rule (and whether it matched), outcome, account and time, paged by run id, and live: the first page asks for newer
// runs every few seconds (src/console/assets.ts) and gets them as table rows from /console/runs/rows.
import { describeBadAccountId, parseAccountId } from '../itsm/account-id.js';
import {
  RUN_OUTCOMES,
  type RunOutcome,
  type RunQuery,
  type RunRecord,
} from '../storage/pipeline-port.js';
import { objectLabel } from './format.js';
import { Badge, Page, Time } from './layout.js';

export const RUNS_PAGE_SIZE = 50;

/** The filters as typed in the form (kept to fill it again) and the query they make. */
export interface RunFilters {
  form: Record<(typeof FILTER_NAMES)[number], string>;
  query: Omit<RunQuery, 'limit'>;
  /** What is wrong with a filter, naming it and what to type instead. */
  errors: string[];
}

const FILTER_NAMES = [
  'object',
  'rule',
  'matched',
  'outcome',
  'account',
  'since',
  'until',
  'before',
] as const;

/** A number as ITSM tools print them: a few letters, then digits (INC0010001, PRB0040002). */
const OBJECT_NUMBER = /^[A-Za-z]{2,8}\d{3,}$/;

/** A time typed in the form (`2026-12-04T16:20`, in UTC) or an ISO 8601 time with its zone. */
function parseTime(text: string): number | null {
  const withZone = /([zZ]|[+-]\d\d:?\d\d)$/.test(text) ? text : `${text}Z`;
  const at = Date.parse(withZone);
  return /^\d{4}-\d\d-\d\d/.test(text) && !Number.isNaN(at) ? at : null;
}

export function parseRunFilters(params: URLSearchParams): RunFilters {
  const form = Object.fromEntries(
    FILTER_NAMES.map((name) => [name, (params.get(name) ?? '').trim()]),
  ) as RunFilters['form'];
  const query: RunFilters['query'] = {};
  const errors: string[] = [];
  if (form.object !== '') {
    if (OBJECT_NUMBER.test(form.object)) query.objectNumber = form.object.toUpperCase();
    else query.objectId = form.object;
  }
  if (form.rule !== '') query.ruleId = form.rule;
  if (form.matched !== '') {
    if (form.matched !== 'yes' && form.matched !== 'no') {
      errors.push(`matched: choose yes or no (did the rule match), not "${form.matched}"`);
    } else if (form.rule === '') {
      errors.push('matched: choose a rule too (matched says whether that rule matched)');
    } else {
      query.matched = form.matched === 'yes';
    }
  }
  if (form.outcome !== '') {
    if ((RUN_OUTCOMES as readonly string[]).includes(form.outcome)) {
      query.outcome = form.outcome as RunOutcome;
    } else {
      errors.push(`outcome: choose one of ${RUN_OUTCOMES.join(', ')}, not "${form.outcome}"`);
    }
  }
  if (form.account !== '') {
    const account = parseAccountId(form.account);
    if (account === null) errors.push(describeBadAccountId('account', form.account));
    else query.account = account;
  }
  for (const name of ['since', 'until'] as const) {
    if (form[name] === '') continue;
    const at = parseTime(form[name]);
    if (at === null) {
      errors.push(`${name}: type a time such as 2026-12-04T16:20 (UTC), not "${form[name]}"`);
    } else {
      query[name] = at;
    }
  }
  if (form.before !== '') {
    if (/^\d{1,15}$/.test(form.before)) query.before = Number(form.before);
    else errors.push(`before: a run number such as 120, not "${form.before}"`);
  }
  return { form, query, errors };
}

/** The filters as a query string, without `before` (for the live rows and the next page). */
export function filterSearch(filters: RunFilters, extra: Record<string, string> = {}): string {
  const params = new URLSearchParams();
  for (const name of FILTER_NAMES) {
    if (name !== 'before' && filters.form[name] !== '') params.set(name, filters.form[name]);
  }
  for (const [name, value] of Object.entries(extra)) params.set(name, value);
  return params.toString();
}

export function RunRows(props: { runs: readonly RunRecord[]; fresh?: boolean }) {
  return (
    <>
      {props.runs.map((run) => (
        <tr class={props.fresh ? 'new' : ''} data-run={String(run.id)}>
          <td>
            <a href={`/console/runs/${run.id}`}>#{run.id}</a>
          </td>
          <td>
            <Time ms={run.at} />
          </td>
          <td>
            {run.objectId === null ? (
              <span class="muted">{objectLabel(run)}</span>
            ) : (
              <a class="object" href={objectHref(run)}>
                {objectLabel(run)}
              </a>
            )}
          </td>
          <td>{run.account}</td>
          <td>{run.eventType}</td>
          <td>
            <Badge value={run.outcome} />
          </td>
          <td>
            {run.rules.map((rule, i) => (
              <>
                {i > 0 && ', '}
                <a href={`/console/rules/${encodeURIComponent(rule)}`}>{rule}</a>
              </>
            ))}
          </td>
          <td class="summary">{run.summary}</td>
        </tr>
      ))}
    </>
  );
}

export function objectHref(run: Pick<RunRecord, 'objectId' | 'account'>): string {
  return `/console/objects/${encodeURIComponent(run.objectId ?? '')}?account=${run.account}`;
}

export function RunTable(props: {
  runs: readonly RunRecord[];
  /** The URL the table asks for newer runs; absent: not live. */
  live?: string;
  empty: string;
}) {
  const newest = props.runs[0]?.id ?? 0;
  return (
    <table class="runs" data-live={props.live} data-newest={String(newest)}>
      <thead>
        <tr>
          <th>Run</th>
          <th>Finished (UTC)</th>
          <th>Object</th>
          <th>Account</th>
          <th>Event</th>
          <th>Outcome</th>
          <th>Rules that acted</th>
          <th>Summary</th>
        </tr>
      </thead>
      <tbody>
        {props.runs.length === 0 ? (
          <tr class="empty">
            <td colspan={8} class="muted">
              {props.empty}
            </td>
          </tr>
        ) : (
          <RunRows runs={props.runs} />
        )}
      </tbody>
    </table>
  );
}

export function RunsPage(props: {
  csrf: string;
  filters: RunFilters;
  runs: readonly RunRecord[];
  nextBefore: number | null;
  ruleIds: readonly string[];
  /** Objects parked now (their runs have outcome `parked`), linking to the overview's list. */
  parked: { total: number; more: boolean };
}) {
  const { form } = props.filters;
  const first = props.filters.query.before === undefined;
  return (
    <Page title="Runs" section="runs" csrf={props.csrf}>
      <h1>
        Runs {first && props.filters.errors.length === 0 && <span class="live">live</span>}{' '}
        {props.parked.total > 0 && (
          <a class="badge parked" id="parked-count" href="/#parked-work">
            {props.parked.total}
            {props.parked.more ? '+' : ''} parked
          </a>
        )}
      </h1>
      <form class="filters" method="get" action="/console/runs">
        <label>
          Object (number or id)
          <input name="object" value={form.object} placeholder="INC0010001" />
        </label>
        <label>
          Rule
          <select name="rule">
            <option value="">any</option>
            {props.ruleIds.map((id) => (
              <option value={id} selected={id === form.rule}>
                {id}
              </option>
            ))}
          </select>
        </label>
        <label>
          Rule matched
          <select name="matched">
            <option value="">any</option>
            <option value="yes" selected={form.matched === 'yes'}>
              yes (it acted)
            </option>
            <option value="no" selected={form.matched === 'no'}>
              no (it was looked at)
            </option>
          </select>
        </label>
        <label>
          Outcome
          <select name="outcome">
            <option value="">any</option>
            {RUN_OUTCOMES.map((outcome) => (
              <option value={outcome} selected={outcome === form.outcome}>
                {outcome}
              </option>
            ))}
          </select>
        </label>
        <label>
          Account
          <input name="account" value={form.account} size={6} />
        </label>
        <label>
          Since (UTC)
          <input name="since" type="datetime-local" value={form.since} />
        </label>
        <label>
          Until (UTC)
          <input name="until" type="datetime-local" value={form.until} />
        </label>
        <button type="submit">Filter</button>
        <a href="/console/runs">Clear</a>
      </form>
      {props.filters.errors.length > 0 && (
        <div class="notice bad" role="alert">
          <ul>
            {props.filters.errors.map((error) => (
              <li>{error}</li>
            ))}
          </ul>
        </div>
      )}
      <RunTable
        runs={props.runs}
        {...(first &&
          props.filters.errors.length === 0 && {
            live: `/console/runs/rows?${filterSearch(props.filters)}`,
          })}
        empty="No run matches these filters (yet)."
      />
      {props.nextBefore !== null && (
        <p class="pager">
          <a
            href={`/console/runs?${filterSearch(props.filters, { before: String(props.nextBefore) })}`}
          >
            Older runs
          </a>
        </p>
      )}
    </Page>
  );
}
