/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The frame of every console page: head (the engine's own style sheet and script, nothing from
// elsewhere), the navigation, the sign-out form (with the session's CSRF token), and small parts
// several pages share (outcome badges, the CSRF field, times).
import { raw } from 'hono/html';
import type { Child } from 'hono/jsx';
import type { RunRecord } from '../storage/pipeline-port.js';
import { CSS_PATH, ICON_PATH, JS_PATH } from './assets.js';
import { formatTime } from './format.js';

export type Section = 'overview' | 'runs' | 'rules' | 'none';

const NAV: [Section, string, string][] = [
  ['overview', '/', 'Overview'],
  ['runs', '/console/runs', 'Runs'],
  ['rules', '/console/rules', 'Rules'],
];

export function Page(props: {
  title: string;
  section: Section;
  /** The session's CSRF token; absent on the sign-in page (no session yet). */
  csrf?: string;
  /**
   * Where the page really is, when it answers a form's POST: the script puts it in the address
   * bar, so that reloading the page reads it again instead of sending the form a second time.
   */
  location?: string;
  children?: Child;
}) {
  return (
    <>
      {raw('<!DOCTYPE html>')}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{`${props.title} - itsm-rules`}</title>
          <link rel="icon" href={ICON_PATH} type="image/svg+xml" />
          <link rel="stylesheet" href={CSS_PATH} />
          <script src={JS_PATH} defer></script>
        </head>
        <body {...(props.location !== undefined && { 'data-location': props.location })}>
          <header class="top">
            <a class="brand" href="/">
              itsm-rules
            </a>
            {props.csrf !== undefined && (
              <nav>
                {NAV.map(([section, href, label]) => (
                  <a href={href} class={section === props.section ? 'here' : ''}>
                    {label}
                  </a>
                ))}
              </nav>
            )}
            {props.csrf !== undefined && (
              <form method="post" action="/console/sign-out">
                <CsrfField token={props.csrf} />
                <button type="submit">Sign out</button>
              </form>
            )}
          </header>
          <main>{props.children}</main>
        </body>
      </html>
    </>
  );
}

export function CsrfField(props: { token: string }) {
  return <input type="hidden" name="_csrf" value={props.token} />;
}

export function Badge(props: { value: string }) {
  return <span class={`badge ${props.value}`}>{props.value.replace('_', ' ')}</span>;
}

export function Time(props: { ms: number | null }) {
  if (props.ms === null) return <span class="muted">never</span>;
  return <time datetime={new Date(props.ms).toISOString()}>{formatTime(props.ms)}</time>;
}

/**
 * A text that names the run's object by its id (a call's summary), with the id shown as the
 * number people know it by; the id stays in the title. Other ids are left as they are.
 */
export function WithNumber(props: {
  text: string;
  run: Pick<RunRecord, 'objectId' | 'objectNumber'>;
}) {
  const { objectId, objectNumber } = props.run;
  if (!objectId || !objectNumber || !props.text.includes(objectId)) return <>{props.text}</>;
  const parts = props.text.split(objectId);
  return (
    <>
      {parts.map((part, i) => (
        <>
          {i > 0 && (
            <abbr class="object" title={objectId}>
              {objectNumber}
            </abbr>
          )}
          {part}
        </>
      ))}
    </>
  );
}
