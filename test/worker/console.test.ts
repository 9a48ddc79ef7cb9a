// The operator console on the Worker (workerd, D1): the same pages and sign-in as on Node, from
// the Worker's own fetch handler, with its rules shown as bundled (no reload action).
import { describe, expect, it } from 'vitest';
import { JS_PATH } from '../../src/console/assets.js';
import { newWorker, request, workerEnv } from './helpers.js';

describe('the console on the Worker', () => {
  it('signs in with the API key and serves the overview, the runs and its script', async () => {
    const worker = newWorker();
    const first = await request(worker, 'GET', '/');
    expect(first.status).toBe(303);
    expect(first.headers.get('Location')).toBe('/console/sign-in');

    const signIn = await request(worker, 'POST', '/console/sign-in', {
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Origin: 'http://worker.test',
      },
      body: new URLSearchParams({ key: workerEnv.ITSM_API_KEY }).toString(),
    });
    expect(signIn.status).toBe(303);
    const cookie = (signIn.headers.get('Set-Cookie') ?? '').split(';')[0] as string;
    expect(cookie).toMatch(/^itsm_console=v1\./);

    const overview = await request(worker, 'GET', '/', { headers: { Cookie: cookie } });
    expect(overview.status).toBe(200);
    const html = await overview.text();
    expect(html).toContain('<h1>Overview</h1>');
    expect(html).toContain('bundled with this deployment');
    expect(html).not.toContain('/console/actions/reload-rules');
    expect(html).not.toContain(workerEnv.ITSM_API_KEY);

    const runs = await request(worker, 'GET', '/console/runs', { headers: { Cookie: cookie } });
    expect(runs.status).toBe(200);
    const script = await request(worker, 'GET', JS_PATH);
    expect(script.status).toBe(200);
    expect(script.headers.get('Content-Type')).toContain('text/javascript');
  });

  it('refuses a wrong key', async () => {
    const answer = await request(newWorker(), 'POST', '/console/sign-in', {
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Origin: 'http://worker.test',
      },
      body: 'key=wrong',
    });
    expect(answer.status).toBe(401);
    expect(answer.headers.get('Set-Cookie')).toBeNull();
  });
});
