/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The Rules pages: every rule of the running set with its description, trigger, last match,
// counts over 24 hours and `check` warnings; and one rule with its file's text as loaded
// (comments included) and the latest runs that looked at it.
import type { RuleProblem } from '../engine/problem.js';
import type { Rule } from '../engine/rule.js';
import { yamlLibrary } from '../engine/yaml-library.js';
import type { RunRecord } from '../storage/pipeline-port.js';
import { Badge, Page, Time } from './layout.js';
import { RunTable } from './runs-page.js';

export interface RuleCounts {
  matched: number;
  failed: number;
}

export function describeTrigger(rule: Rule): string {
  const { trigger } = rule;
  const on = trigger.schedule
    ? `schedule "${trigger.schedule}" (UTC)`
    : `${trigger.events.join(', ')}`;
  const parts = [`${trigger.types.join(', ')}: ${on}`];
  if (trigger.changed) parts.push(`when ${trigger.changed.join(', ')} changed`);
  if (trigger.self) parts.push("the engine's own writes too");
  return parts.join('; ');
}

function Warnings(props: { warnings: readonly RuleProblem[] }) {
  if (props.warnings.length === 0) return null;
  return (
    <ul class="warnings">
      {props.warnings.map((w) => (
        <li>
          {w.pointer || '/'}: {w.message}
        </li>
      ))}
    </ul>
  );
}

export function RulesPage(props: {
  csrf: string;
  rules: readonly Rule[];
  counts: ReadonlyMap<string, RuleCounts>;
  lastMatched: ReadonlyMap<string, number>;
  warnings: readonly RuleProblem[];
  source: string;
}) {
  return (
    <Page title="Rules" section="rules" csrf={props.csrf}>
      <h1>Rules</h1>
      <p class="muted">
        {props.rules.length} rules from {props.source}, in the order they run.
      </p>
      <table class="rule-list">
        <thead>
          <tr>
            <th>Rule</th>
            <th>Trigger</th>
            <th>Last matched</th>
            <th>Matched / failed (24 h)</th>
            <th>Check</th>
          </tr>
        </thead>
        <tbody>
          {props.rules.map((rule) => {
            const counts = props.counts.get(rule.id) ?? { matched: 0, failed: 0 };
            const warnings = props.warnings.filter((w) => w.file === rule.file);
            return (
              <tr data-rule={rule.id}>
                <td>
                  <a href={`/console/rules/${encodeURIComponent(rule.id)}`}>{rule.id}</a>
                  {!rule.enabled && <span class="badge"> disabled</span>}
                  {rule.description && <div class="muted">{rule.description}</div>}
                </td>
                <td>{describeTrigger(rule)}</td>
                <td>
                  <Time ms={props.lastMatched.get(rule.id) ?? null} />
                </td>
                <td class="nowrap">
                  <a href={`/console/runs?rule=${encodeURIComponent(rule.id)}&matched=yes`}>
                    {counts.matched}
                  </a>{' '}
                  /{' '}
                  <a href={`/console/runs?rule=${encodeURIComponent(rule.id)}&outcome=failed`}>
                    {counts.failed}
                  </a>
                </td>
                <td>
                  {warnings.length === 0 ? <Badge value="ok" /> : <Warnings warnings={warnings} />}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </Page>
  );
}

export function RulePage(props: {
  csrf: string;
  rule: Rule;
  /** The rule file's text as loaded (comments and all); null when the set does not keep it. */
  text: string | null;
  counts: RuleCounts;
  warnings: readonly RuleProblem[];
  runs: readonly RunRecord[];
}) {
  const { rule } = props;
  return (
    <Page title={rule.id} section="rules" csrf={props.csrf}>
      <h1>
        {rule.id} {!rule.enabled && <span class="badge">disabled</span>}
      </h1>
      <div class="card">
        {rule.description && <p>{rule.description}</p>}
        <p>
          <strong>Trigger:</strong> {describeTrigger(rule)}
        </p>
        <p>
          <strong>File:</strong> <span class="mono">{rule.file}</span>, order {rule.order}
        </p>
        <p>
          <strong>Last 24 hours:</strong> matched {props.counts.matched}, failed{' '}
          {props.counts.failed}
        </p>
        <h2>Check</h2>
        {props.warnings.length === 0 ? (
          <p>
            <Badge value="ok" /> no warning
          </p>
        ) : (
          <Warnings warnings={props.warnings} />
        )}
      </div>
      <h2>Source</h2>
      {props.text === null && <p class="muted">As read (the file's own text is not kept):</p>}
      <pre>{props.text ?? yamlLibrary().stringify(rule.source)}</pre>
      <h2>
        Latest runs that looked at it{' '}
        <a href={`/console/runs?rule=${encodeURIComponent(rule.id)}`}>(all)</a>
      </h2>
      <RunTable runs={props.runs} empty="No run has looked at this rule yet." />
    </Page>
  );
}
