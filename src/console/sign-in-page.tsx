/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The sign-in form: the API key, typed once, posted (never in a URL) and never written back.
import { Page } from './layout.js';

export function SignInPage(props: { message?: string; bad?: boolean }) {
  return (
    <Page title="Sign in" section="none">
      <div class="card signin">
        <h1>Sign in</h1>
        {props.message && (
          <p class={props.bad ? 'notice bad' : 'notice'} role="alert">
            {props.message}
          </p>
        )}
        <form method="post" action="/console/sign-in">
          <label for="key">The engine's API key</label>
          <input id="key" name="key" type="password" autocomplete="current-password" required />
          <button type="submit">Sign in</button>
        </form>
        <p class="muted">
          The same key as the admin API's (ITSM_API_KEY). The console keeps a signed session in a
          cookie, not the key.
        </p>
      </div>
    </Page>
  );
}

/** An answer that is not a page of its own: a refused form, an unknown run. */
export function MessagePage(props: { csrf?: string; title: string; message: string }) {
  return (
    <Page
      title={props.title}
      section="none"
      {...(props.csrf !== undefined && { csrf: props.csrf })}
    >
      <h1>{props.title}</h1>
      <p class="notice bad" role="alert">
        {props.message}
      </p>
      <p>
        <a href="/">Back to the overview</a>
      </p>
    </Page>
  );
}
