/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The Overview: per rule, hits and failures over the last 24 hours by hour; the work that failed
// lately; each account's drain (lag, events remaining); the rule set's state (last load, the
// problems of a refused reload, warnings); the API the engine acts through; and the operator's
// actions (run scheduled rules now, reload rules) and the parked work with its Retry buttons.
import type { Rule } from '../engine/rule.js';
import { isPending } from '../storage/drain-lag.js';
import type { AccountState, RunRecord } from '../storage/pipeline-port.js';
import { HourBars } from './chart.js';
import { formatDuration } from './format.js';
import { CsrfField, Page, Time } from './layout.js';
import type { ConsoleRuleState } from './options.js';
import { type ParkedLine, ParkedWork } from './parked.js';
import { RunTable } from './runs-page.js';

export interface RuleHours {
  rule: Rule;
  hits: number[];
  failures: number[];
}

export interface AccountLine {
  state: AccountState;
  /** Milliseconds since the oldest notification not yet drained; 0 when caught up. */
  lagMs: number;
  /**
   * Events after the cursor at the last page this process read; null when unknown (none read
   * yet, or it read 0 and a notification has come since).
   */
  remaining: number | null;
}

export function OverviewPage(props: {
  csrf: string;
  now: number;
  rules: ConsoleRuleState;
  apiUrl: string;
  hours: readonly RuleHours[];
  failing: readonly RunRecord[];
  accounts: readonly AccountLine[];
  parked: { lines: readonly ParkedLine[]; total: number; more: boolean };
  canReload: boolean;
  notice?: { text: string; bad: boolean; lines?: readonly string[] };
  /** Set when the page answers an action's POST (see Page). */
  location?: string;
}) {
  const { rules } = props;
  const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
  return (
    <Page
      title="Overview"
      section="overview"
      csrf={props.csrf}
      {...(props.location !== undefined && { location: props.location })}
    >
      <h1>Overview</h1>
      {props.notice && (
        <div class={props.notice.bad ? 'notice bad' : 'notice'} role="status">
          {props.notice.text}
          {props.notice.lines && props.notice.lines.length > 0 && (
            <ul class="problems">
              {props.notice.lines.map((line) => (
                <li>{line}</li>
              ))}
            </ul>
          )}
        </div>
      )}
      <div class="grid">
        <div class="card" id="rule-set">
          <h2>Rule set</h2>
          <p>
            {rules.ruleSet.rules.length} rules ({rules.ruleSet.index.scheduled.length} scheduled)
            from <span class="mono">{rules.source}</span>, loaded <Time ms={rules.loadedAt} />
          </p>
          {rules.refused ? (
            <div class="notice bad">
              The reload at <Time ms={rules.refused.at} /> was refused; the set above still runs.
              Fix these and reload:
              <ul class="problems">
                {rules.refused.problems.map((problem) => (
                  <li class="mono">{problem}</li>
                ))}
              </ul>
            </div>
          ) : (
            <p class="muted">No reload has been refused since.</p>
          )}
          {rules.warnings.length > 0 && (
            <p>
              <a href="/console/rules">
                {rules.warnings.length} check warning{rules.warnings.length === 1 ? '' : 's'}
              </a>
            </p>
          )}
        </div>
        <div class="card" id="api">
          <h2>ITSM API</h2>
          <p class="mono">{props.apiUrl}</p>
        </div>
        <div class="card" id="actions">
          <h2>Actions</h2>
          <div class="actions">
            <form
              method="post"
              action="/console/actions/run-schedules"
              data-confirm="Run every scheduled rule now, for every account?"
            >
              <CsrfField token={props.csrf} />
              <button type="submit">Run scheduled rules now</button>
            </form>
            {props.canReload && (
              <form method="post" action="/console/actions/reload-rules">
                <CsrfField token={props.csrf} />
                <button type="submit" class="secondary">
                  Reload rules
                </button>
              </form>
            )}
          </div>
          {!props.canReload && (
            <p class="muted">
              The rules are bundled with this deployment: deploy again to change them.
            </p>
          )}
        </div>
      </div>

      <h2>Rules over the last 24 hours</h2>
      <table class="rule-hours">
        <thead>
          <tr>
            <th>Rule</th>
            <th>By hour, 24 h ago to now (hits; failures in red)</th>
            <th>Hits</th>
            <th>Failures</th>
          </tr>
        </thead>
        <tbody>
          {props.hours.map(({ rule, hits, failures }) => (
            <tr data-rule={rule.id}>
              <td>
                <a href={`/console/rules/${encodeURIComponent(rule.id)}`}>{rule.id}</a>
              </td>
              <td>
                <HourBars hits={hits} failures={failures} />
              </td>
              <td>
                <a href={`/console/runs?rule=${encodeURIComponent(rule.id)}&matched=yes`}>
                  {sum(hits)}
                </a>
              </td>
              <td>
                {sum(failures) > 0 ? (
                  <a href={`/console/runs?rule=${encodeURIComponent(rule.id)}&outcome=failed`}>
                    {sum(failures)}
                  </a>
                ) : (
                  0
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>

      <h2>Work that failed lately</h2>
      <RunTable runs={props.failing} empty="No run failed." />
      <p>
        <a href="/console/runs?outcome=failed">Every failed run</a>
      </p>

      <h2>Parked work</h2>
      <ParkedWork csrf={props.csrf} now={props.now} {...props.parked} />

      <h2>Accounts</h2>
      <table class="accounts">
        <thead>
          <tr>
            <th>Account</th>
            <th>Last notified</th>
            <th>Last drained to the end</th>
            <th>Drain lag</th>
            <th>Events remaining</th>
          </tr>
        </thead>
        <tbody>
          {props.accounts.length === 0 ? (
            <tr>
              <td colspan={5} class="muted">
                No account has sent a notification yet.
              </td>
            </tr>
          ) : (
            props.accounts.map(({ state, lagMs, remaining }) => (
              <tr>
                <td>
                  <a href={`/console/runs?account=${state.account}`}>{state.account}</a>
                </td>
                <td>
                  <Time ms={state.notifiedAt} />
                </td>
                <td>
                  <Time ms={state.drainedAt} />
                </td>
                <td>{isPending(state) ? formatDuration(lagMs) : 'caught up'}</td>
                <td>{remaining ?? <span class="muted">unknown</span>}</td>
              </tr>
            ))
          )}
        </tbody>
      </table>
    </Page>
  );
}
