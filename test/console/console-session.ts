// Signing in to the console over plain HTTP, as its tests do: the session cookie from a sign-in
// with the API key, and the CSRF token read from the overview's forms.
import { TEST_API_KEY, type TestEngine } from '../helpers/serve.js';

export const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };

export async function signIn(engine: TestEngine, key = TEST_API_KEY) {
  return engine.call('POST', '/console/sign-in', {
    auth: null,
    redirect: 'manual',
    headers: { ...FORM, Origin: new URL(engine.url).origin },
    body: new URLSearchParams({ key }).toString(),
  });
}

/** A session cookie (`itsm_console=...`) and its CSRF token, read from the overview's forms. */
export async function consoleSession(
  engine: TestEngine,
): Promise<{ cookie: string; csrf: string }> {
  const answer = await signIn(engine);
  const cookie = (answer.headers.get('Set-Cookie') ?? '').split(';')[0] as string;
  const page = await engine.call('GET', '/', { auth: null, headers: { Cookie: cookie } });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)?.[1];
  if (!csrf) throw new Error(`no CSRF token in the overview: ${page.text.slice(0, 200)}`);
  return { cookie, csrf };
}
