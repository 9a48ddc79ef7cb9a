/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// One run: the event, what it changed in the object (field by field), every rule looked at with
// its verdict and, for a rule whose condition was false, the clause that was false and the values
// it read; every call with its request summary, status and time; and the chain of the engine's
// own writes (self hops) the run belongs to.
import type { RuleOutcome } from '../engine/evaluate.js';
import type { CallResult } from '../engine/execute.js';
import type { RuleSet } from '../engine/load.js';
import type { PlanNote } from '../engine/plan.js';
import { type FieldChange, renderRunDetail } from '../engine/run-record.js';
import type { RunRecord } from '../storage/pipeline-port.js';
import { objectLabel, showValue } from './format.js';
import { Badge, Page, Time, WithNumber } from './layout.js';
import { objectHref } from './runs-page.js';

/** The parts of a run's `detail` the page shows; every part is optional (older records). */
interface Detail {
  event?: { id?: string; type?: string; at?: string; user_id?: string | null };
  reason?: string;
  rules?: RuleOutcome[];
  calls?: CallResult[];
  notes?: PlanNote[];
  changes?: FieldChange[];
}

/**
 * The run's detail; with `rules` (the set loaded now), each false condition's explanation is
 * worked out as GET /runs shows it (records keep the condition's context, not its lines).
 */
export function parseDetail(run: RunRecord, rules?: () => RuleSet): Detail {
  try {
    const detail = (rules ? renderRunDetail(run.detail, rules) : JSON.parse(run.detail)) as unknown;
    return detail !== null && typeof detail === 'object' ? (detail as Detail) : {};
  } catch {
    return {};
  }
}

/**
 * The runs of one chain of engine writes around `run`, oldest first: back from it to the run of
 * someone else's change (hop 0), then on from there through every later run of the object that
 * is an engine write of the chain: one hop further, or another write at a hop already reached
 * (a run that made two calls on the object sets off two runs at the next hop), until the next
 * change of someone else. So every run of one chain shows the same chain. `runs` are the
 * object's runs, any order.
 */
export function selfHopChain(run: RunRecord, runs: readonly RunRecord[]): RunRecord[] {
  const ordered = [...runs].sort((a, b) => a.id - b.id);
  let at = ordered.findIndex((r) => r.id === run.id);
  if (at < 0) return [run];
  let root = run;
  for (let i = at - 1; i >= 0 && root.selfHops > 0; i--) {
    const earlier = ordered[i] as RunRecord;
    if (earlier.selfHops === root.selfHops - 1) {
      root = earlier;
      at = i;
    }
  }
  const chain = [root];
  let hop = root.selfHops;
  for (let i = at + 1; i < ordered.length; i++) {
    const later = ordered[i] as RunRecord;
    if (later.selfHops <= root.selfHops) break;
    if (later.selfHops <= hop + 1) {
      chain.push(later);
      hop = Math.max(hop, later.selfHops);
    }
  }
  // Older runs than those given may be missing: the run is in its own chain whatever happened.
  if (!chain.includes(run)) chain.push(run);
  return chain.sort((a, b) => a.id - b.id);
}

/** The event's own time (ISO 8601, as the API wrote it), in the console's form when it parses. */
function EventTime(props: { at: string }) {
  const ms = Date.parse(props.at);
  return Number.isNaN(ms) ? props.at : <Time ms={ms} />;
}

export function ChangesTable(props: { changes: readonly FieldChange[] | undefined }) {
  if (!props.changes) {
    return <p class="muted">This run was recorded before the engine kept what events changed.</p>;
  }
  if (props.changes.length === 0) return <p class="muted">No field changed that can be named.</p>;
  return (
    <table class="changes">
      <thead>
        <tr>
          <th>Field</th>
          <th>Before</th>
          <th>After</th>
        </tr>
      </thead>
      <tbody>
        {props.changes.map((change) => (
          <tr>
            <td class="mono">{change.field}</td>
            <td class="mono del">{showValue(change.before)}</td>
            <td class="mono ins">{showValue(change.after)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function RunPage(props: {
  csrf: string;
  run: RunRecord;
  chain: readonly RunRecord[];
  rules: () => RuleSet;
}) {
  const { run } = props;
  const detail = parseDetail(run, props.rules);
  const rules = detail.rules ?? [];
  const calls = detail.calls ?? [];
  return (
    <Page title={`Run #${run.id}`} section="runs" csrf={props.csrf}>
      <h1>
        Run #{run.id} <Badge value={run.outcome} />
      </h1>
      <div class="card">
        <p>
          <strong>
            {run.objectId === null ? (
              objectLabel(run)
            ) : (
              <a href={objectHref(run)}>{objectLabel(run)}</a>
            )}
          </strong>{' '}
          {run.objectType && <span class="muted">{run.objectType}</span>}{' '}
          {run.objectId && <span class="mono muted">{run.objectId}</span>}
        </p>
        <p>
          Event <span class="mono">{run.eventId}</span> ({run.eventType}) of account {run.account}
          {detail.event?.at && (
            <>
              {' '}
              at <EventTime at={detail.event.at} />
            </>
          )}
          {detail.event?.user_id && <> by {detail.event.user_id}</>}; finished <Time ms={run.at} />
          {run.selfHops > 0 && <>; the engine's own write, hop {run.selfHops}</>}
        </p>
        <p>{run.summary}</p>
        {detail.reason && <p class="notice">{detail.reason}</p>}
      </div>

      <h2>What the event changed</h2>
      <ChangesTable changes={detail.changes} />

      <h2>Rules looked at</h2>
      {rules.length === 0 ? (
        <p class="muted">No rule was looked at.</p>
      ) : (
        <table class="rules">
          <thead>
            <tr>
              <th>Rule</th>
              <th>Verdict</th>
              <th>Why</th>
            </tr>
          </thead>
          <tbody>
            {rules.map((rule) => (
              <tr data-rule={rule.ruleId}>
                <td>
                  <a href={`/console/rules/${encodeURIComponent(rule.ruleId)}`}>{rule.ruleId}</a>
                </td>
                <td>
                  <Badge value={rule.verdict} />
                </td>
                <td>
                  {rule.reason && <div>{rule.reason}</div>}
                  {rule.details && rule.details.length > 0 && (
                    <ul class="why">
                      {rule.details.map((line) => (
                        <li>{line}</li>
                      ))}
                    </ul>
                  )}
                  {rule.correlation && (
                    <div class="muted">
                      correlated by {rule.correlation.key}: {rule.correlation.count} events
                    </div>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2>Calls</h2>
      {calls.length === 0 ? (
        <p class="muted">No call was made.</p>
      ) : (
        <table class="calls">
          <thead>
            <tr>
              <th>#</th>
              <th>Rule</th>
              <th>Request</th>
              <th>Outcome</th>
              <th>Status</th>
              <th>Time</th>
              <th>Detail</th>
            </tr>
          </thead>
          <tbody>
            {calls.map((call) => (
              <tr>
                <td>{call.index}</td>
                <td>{call.ruleId}</td>
                <td>
                  <span class="muted">{call.kind}</span>{' '}
                  <WithNumber text={call.summary} run={run} />
                </td>
                <td>
                  <Badge value={call.outcome} />
                  {call.earlier && <span class="muted"> (made by an earlier try)</span>}
                </td>
                <td>{call.status ?? ''}</td>
                <td>{call.ms === undefined ? '' : `${call.ms} ms`}</td>
                <td>{call.detail ?? ''}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {detail.notes && detail.notes.length > 0 && (
        <>
          <h2>Notes</h2>
          <ul>
            {detail.notes.map((note) => (
              <li>
                {note.ruleId} action {note.action}: {note.message}
              </li>
            ))}
          </ul>
        </>
      )}

      <h2>Chain of engine writes</h2>
      {props.chain.length <= 1 ? (
        <p class="muted">
          This run is not part of a chain: no run of the engine's own writes follows or led to it.
        </p>
      ) : (
        <ol class="chain">
          {props.chain.map((link) => (
            <li>
              {link.id === run.id ? (
                <strong>#{link.id} (this run)</strong>
              ) : (
                <a href={`/console/runs/${link.id}`}>#{link.id}</a>
              )}{' '}
              hop {link.selfHops}, <Badge value={link.outcome} /> {link.summary}
            </li>
          ))}
        </ol>
      )}
      <h2>Record</h2>
      <details>
        <summary>The run record as stored</summary>
        <pre>{JSON.stringify(detail, null, 2)}</pre>
      </details>
    </Page>
  );
}
