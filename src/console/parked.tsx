/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// Parked work in the console: the overview's list of parked objects (an object whose action keeps
// failing waits, with its later events, for a retry: src/webhook/park.ts) with a "Retry now" form
// per object and one for all, the same card on an object's timeline, and the count the Runs page
// links to. Every form posts to /console/actions/retry-parked with the session's CSRF field and
// the page to come back to.
import type { ParkedObject } from '../storage/pipeline-port.js';
import { formatDuration, shortId } from './format.js';
import { CsrfField, Time } from './layout.js';
import { objectHref } from './runs-page.js';

export const RETRY_PARKED_PATH = '/console/actions/retry-parked';

/** A parked object and the number people know it by (from its runs), when it has one. */
export interface ParkedLine {
  parked: ParkedObject;
  number: string | null;
}

export function parkedLabel(line: ParkedLine): string {
  return line.number ?? `${line.parked.objectType} ${shortId(line.parked.objectId)}`;
}

/** A form that retries one parked object (`id`) or, without one, every parked object. */
export function RetryParkedForm(props: {
  csrf: string;
  back: string;
  id?: number;
  label: string;
  confirm?: string;
}) {
  return (
    <form
      method="post"
      action={RETRY_PARKED_PATH}
      class="inline"
      {...(props.confirm !== undefined && { 'data-confirm': props.confirm })}
    >
      <CsrfField token={props.csrf} />
      {props.id !== undefined && <input type="hidden" name="id" value={String(props.id)} />}
      <input type="hidden" name="back" value={props.back} />
      <button type="submit" class="secondary">
        {props.label}
      </button>
    </form>
  );
}

function NextRetry(props: { at: number; now: number }) {
  if (props.at <= props.now) return <span class="badge parked">due now</span>;
  return (
    <>
      <Time ms={props.at} /> <span class="muted">(in {formatDuration(props.at - props.now)})</span>
    </>
  );
}

/** The overview's section: every parked object (the `shown` longest parked) and the actions. */
export function ParkedWork(props: {
  csrf: string;
  now: number;
  lines: readonly ParkedLine[];
  /** How many objects are parked, or `more` when there are more than could be counted. */
  total: number;
  more: boolean;
}) {
  if (props.lines.length === 0) {
    return (
      <div id="parked-work">
        <p class="muted">Nothing is parked: no object waits for a failing action to be retried.</p>
      </div>
    );
  }
  const count = `${props.total}${props.more ? '+' : ''}`;
  return (
    <div id="parked-work">
      <div class="actions parked-head">
        <p>
          <span class="badge parked">{count} parked</span>{' '}
          {props.lines.length < props.total &&
            `The ${props.lines.length} parked longest are shown; "Retry all" retries every one.`}{' '}
          Each is retried on its own on a backoff schedule; "Retry now" makes it due at once.
        </p>
        <RetryParkedForm
          csrf={props.csrf}
          back="/"
          label="Retry all now"
          confirm={`Retry every parked object (${count}) now?`}
        />
      </div>
      <table class="parked">
        <thead>
          <tr>
            <th>Account</th>
            <th>Object</th>
            <th>Parked since (UTC)</th>
            <th>Attempts</th>
            <th>Next retry</th>
            <th>Last error</th>
            <th>Events waiting</th>
            <th></th>
          </tr>
        </thead>
        <tbody>
          {props.lines.map((line) => (
            <tr data-parked={String(line.parked.id)}>
              <td>{line.parked.account}</td>
              <td>
                <a class="object" href={objectHref(line.parked)}>
                  {parkedLabel(line)}
                </a>
              </td>
              <td>
                <Time ms={line.parked.parkedAt} />
              </td>
              <td>{line.parked.attempts}</td>
              <td>
                <NextRetry at={line.parked.nextAt} now={props.now} />
              </td>
              <td class="error mono">{line.parked.error}</td>
              <td>{line.parked.events}</td>
              <td>
                <RetryParkedForm csrf={props.csrf} back="/" id={line.parked.id} label="Retry now" />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** On an object's timeline: the object is parked now, why, and its Retry. */
export function ObjectParked(props: {
  csrf: string;
  now: number;
  parked: ParkedObject;
  back: string;
}) {
  const { parked } = props;
  return (
    <div class="card parked" id="object-parked">
      <p>
        <span class="badge parked">parked</span> since <Time ms={parked.parkedAt} /> (account{' '}
        {parked.account}): {parked.events} event{parked.events === 1 ? '' : 's'} of it wait, in
        order, for an action that keeps failing. Attempts: {parked.attempts}; next retry:{' '}
        <NextRetry at={parked.nextAt} now={props.now} />.
      </p>
      <p class="error mono">{parked.error}</p>
      <RetryParkedForm csrf={props.csrf} back={props.back} id={parked.id} label="Retry now" />
    </div>
  );
}
