/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// An object's timeline: every run of one object, oldest first, with what each event changed in
// it, the rules that acted and the calls they made; when the object is parked, since when, why,
// and its Retry.
import type { ParkedObject, RunRecord } from '../storage/pipeline-port.js';
import { objectLabel, showValue } from './format.js';
import { Badge, Page, Time, WithNumber } from './layout.js';
import { ObjectParked } from './parked.js';
import { parseDetail } from './run-page.js';

export function ObjectPage(props: {
  csrf: string;
  now: number;
  objectId: string;
  /** Parked now (one per account the object id is parked in). */
  parked: readonly ParkedObject[];
  /** This page's own path, where a Retry comes back to. */
  back: string;
  notice?: { text: string; bad: boolean };
  /** Oldest first. */
  runs: readonly RunRecord[];
  /** True when older runs than those shown exist. */
  truncated: boolean;
}) {
  const latest = props.runs.at(-1);
  const label = latest ? objectLabel(latest) : props.objectId;
  return (
    <Page title={label} section="runs" csrf={props.csrf}>
      <h1>
        {label} <span class="muted">{latest?.objectType ?? ''}</span>
      </h1>
      <p class="mono muted">{props.objectId}</p>
      {props.notice && (
        <div class={props.notice.bad ? 'notice bad' : 'notice'} role="status">
          {props.notice.text}
        </div>
      )}
      {props.parked.map((parked) => (
        <ObjectParked csrf={props.csrf} now={props.now} parked={parked} back={props.back} />
      ))}
      {props.truncated && <p class="notice">Only the latest {props.runs.length} runs are shown.</p>}
      {props.runs.length === 0 ? (
        <p class="muted">
          The engine has no run for this object (runs are kept for 30 days by default).
        </p>
      ) : (
        <ol class="timeline">
          {props.runs.map((run) => {
            const detail = parseDetail(run);
            const calls = detail.calls ?? [];
            return (
              <li class="card" data-run={String(run.id)}>
                <p>
                  <a href={`/console/runs/${run.id}`}>Run #{run.id}</a> <Time ms={run.at} />{' '}
                  {run.eventType} <Badge value={run.outcome} />
                  {run.selfHops > 0 && (
                    <span class="muted"> (engine write, hop {run.selfHops})</span>
                  )}
                </p>
                {detail.changes && detail.changes.length > 0 && (
                  <p>
                    Changed:{' '}
                    {detail.changes.slice(0, 8).map((change, i) => (
                      <>
                        {i > 0 && '; '}
                        <span class="mono">{change.field}</span>{' '}
                        {change.before !== undefined && (
                          <span class="del mono">{showValue(change.before).slice(0, 60)}</span>
                        )}
                        {change.before !== undefined && ' -> '}
                        <span class="ins mono">{showValue(change.after).slice(0, 60)}</span>
                      </>
                    ))}
                    {detail.changes.length > 8 && ` and ${detail.changes.length - 8} more`}
                  </p>
                )}
                <p>{run.summary}</p>
                {calls.length > 0 && (
                  <ul>
                    {calls.map((call) => (
                      <li>
                        <WithNumber text={call.summary} run={run} /> <Badge value={call.outcome} />{' '}
                        {call.status ?? ''}
                      </li>
                    ))}
                  </ul>
                )}
              </li>
            );
          })}
        </ol>
      )}
    </Page>
  );
}
