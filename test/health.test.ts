// `/healthz` tells the truth: an all-in-one engine over real HTTP on 127.0.0.1 with a real rules
// folder and a real SQLite file. Rule files broken on disk (the last good set still running):
// 200, `status: degraded`, `rules_not_reloaded`; a database that cannot be written: 503,
// `database_unwritable` with SQLite's cause; each back to `ok` once fixed. The metrics follow.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, startTestEngine, type TestEngine, writeRules } from './helpers/serve.js';

const GOOD_RULE = `on: {type: incident, events: [add]}
when: {"==": [{var: object.category}, network]}
then:
  - update: {priority: high}
`;
// The same file broken: an operator that does not exist.
const BROKEN_RULE = GOOD_RULE.replace('"=="', '"is-about"');

const engines: TestEngine[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
  for (const cleanup of cleanups.splice(0)) cleanup();
});

async function start(
  overrides: Parameters<typeof startTestEngine>[0] = {},
): Promise<{ engine: TestEngine; rulesDir: string }> {
  const rules = writeRules({ 'incident/raise-network.yaml': GOOD_RULE });
  cleanups.push(rules.remove);
  const dir = mkdtempSync(join(tmpdir(), 'itsm-rules-health-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const engine = await startTestEngine({
    rulesDir: rules.dir,
    db: join(dir, 'engine.db'),
    ...overrides,
  });
  engines.push(engine);
  return { engine, rulesDir: rules.dir };
}

/** The value of an unlabelled series on /metrics. */
async function metric(engine: TestEngine, name: string): Promise<number> {
  const response = await engine.call('GET', '/metrics');
  const line = response.text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} on /metrics`);
  return Number(line.slice(name.length + 1));
}

describe('/healthz', () => {
  it('answers ok with no problems, and the start counts as a successful load', async () => {
    const { engine } = await start();
    const health = await engine.call('GET', '/healthz', { auth: null });
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ ok: true, status: 'ok', problems: [], rules: 1 });
    expect(await metric(engine, 'itsm_rules_reload_success')).toBe(1);
    expect(await metric(engine, 'itsm_rules_reload_timestamp_seconds')).toBeGreaterThan(0);
    expect(await metric(engine, 'itsm_rules_database_errors_total')).toBe(0);
  });

  it('reports rules_not_reloaded (200, degraded) while a rule file on disk is broken, and ok once it is fixed', async () => {
    const { engine, rulesDir } = await start({ reloadIntervalMs: 20 });
    const file = join(rulesDir, 'incident', 'raise-network.yaml');
    const loadedAt = await metric(engine, 'itsm_rules_reload_timestamp_seconds');

    writeFileSync(file, BROKEN_RULE);
    const degraded = await eventually(async () => {
      const health = await engine.call('GET', '/healthz', { auth: null });
      return health.json.status === 'degraded' && health;
    }, '/healthz to report the broken rule file');
    expect(degraded.status).toBe(200);
    expect(degraded.json.ok).toBe(false);
    // The last good set is still the one running.
    expect(degraded.json.rules).toBe(1);
    expect(degraded.json.problems).toEqual([
      {
        code: 'rules_not_reloaded',
        message: expect.stringContaining(`the rule files in ${rulesDir} have 1 problem since `),
        problems_count: 1,
        since: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
    ]);
    expect(degraded.json.problems[0].message).toContain('the last good set (1 rules) is running');
    expect(await metric(engine, 'itsm_rules_reload_success')).toBe(0);
    expect(await metric(engine, 'itsm_rules_reload_timestamp_seconds')).toBeGreaterThanOrEqual(
      loadedAt,
    );

    writeFileSync(file, GOOD_RULE.replace('high', 'critical'));
    const healthy = await eventually(async () => {
      const health = await engine.call('GET', '/healthz', { auth: null });
      return health.json.status === 'ok' && health;
    }, '/healthz to be ok again once the file is fixed');
    expect(healthy.status).toBe(200);
    expect(healthy.json).toMatchObject({ ok: true, problems: [] });
    expect(await metric(engine, 'itsm_rules_reload_success')).toBe(1);
  });

  it('reports database_unwritable (503) while the database is read-only, refuses notifications it cannot record, and is ok once writable again', async () => {
    const { engine } = await start();
    // The engine's own connection made read-only: every write answers SQLITE_READONLY, as on a
    // read-only file or file system (file permissions would not stop the root user of CI).
    engine.database.pragma('query_only = 1');

    const health = await engine.call('GET', '/healthz', { auth: null });
    expect(health.status).toBe(503);
    expect(health.json).toMatchObject({ ok: false, status: 'degraded' });
    expect(health.json.problems).toEqual([
      {
        code: 'database_unwritable',
        message: expect.stringMatching(
          /^the database .*engine\.db cannot be written: attempt to write a readonly database \(SQLITE_READONLY\)/,
        ),
        cause: 'SQLITE_READONLY',
      },
    ]);

    // A real write failing: the notification of an account not yet pending cannot be recorded.
    const notified = await engine.notify(JSON.stringify({ account: 77 }));
    expect(notified.status).toBe(503);
    expect(await metric(engine, 'itsm_rules_database_errors_total')).toBeGreaterThanOrEqual(2);

    engine.database.pragma('query_only = 0');
    const healthy = await engine.call('GET', '/healthz', { auth: null });
    expect(healthy.status).toBe(200);
    expect(healthy.json).toMatchObject({ ok: true, status: 'ok', problems: [] });
    const notifiedAgain = await engine.notify(JSON.stringify({ account: 77 }));
    expect(notifiedAgain.status).toBe(200);
  });
});
