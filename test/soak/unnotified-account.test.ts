// Found by the soak's design review: all-in-one, the embedded API's webhook notifications live in
// memory in the engine's own process. A SIGKILL after a write is committed and before its
// notification is delivered loses that notification; for an account the engine had never been
// notified of, nothing would ever drain it (start-up re-drains only the accounts the engine
// knows). Reproduced exactly: the embedded API alone writes to the database with no webhook
// registered (a notification that never arrives), then `serve` all-in-one starts on that
// database and must still act on the write.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { callHttp } from '../helpers/itsm.js';
import { type CliProcess, eventually, spawnItsmServer, spawnServe } from '../helpers/serve.js';

const KEY = 'unnotified-key';
const running: CliProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  for (const cli of running.splice(0)) await cli.stop('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const call = (base: string, method: string, path: string, body?: unknown) =>
  callHttp(base, method, path, { body, auth: `APIKey ${KEY}` });

it('acts on the writes of an account whose notification never reached the engine', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-unnotified-'));
  dirs.push(dir);
  const db = join(dir, 'all-in-one.db');

  const api = await spawnItsmServer(['--port', '0', '--db', db, '--api-key', KEY]);
  running.push(api);
  const created = await call(api.url, 'POST', '/v1/accounts/7/itsm/incidents', {
    category: 'network',
    priority: 'medium',
  });
  expect(created.status).toBe(201);
  expect((await api.stop('SIGTERM')).code).toBe(0);

  const serve = await spawnServe([
    ...['--port', '0', '--db', db, '--api-key', KEY, '--rules', 'soak/rules'],
    ...['--no-schedules', '--reload-interval', '0'],
  ]);
  running.push(serve);
  const path = `/v1/accounts/7/itsm/incidents/${created.json.id}`;
  const escalated = await eventually(async () => {
    const incident = await call(serve.url, 'GET', path);
    return incident.json.priority === 'high' && incident.json;
  }, 'the incident of account 7 to be escalated by soak/rules');
  expect(escalated).toMatchObject({ priority: 'high', escalation: 1 });
}, 60_000);
