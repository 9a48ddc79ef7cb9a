// The Worker's messages name its own settings (vars in wrangler.toml), not the Node command
// line's flags: the engine's shared code takes that wording from the runtime. Against the
// embedded ITSM API over real HTTP, state in the local D1 database, the example rules.
import { describe, expect, it } from 'vitest';
import { createIncident, deliver, newWorker, runsOf, workerEnv } from './helpers.js';

describe("the Worker's messages", () => {
  it('names the ITSM_HTTP_ALLOW var when the http action calls a host not on the allow-list', async () => {
    const account = 801;
    // A critical incident: the example rule page-on-call-for-critical calls pager.example.com,
    // which the test Worker's (empty) ITSM_HTTP_ALLOW does not list.
    await createIncident(account, { description: 'core switch down', priority: 'critical' });
    await deliver(newWorker(), [{ account }]);
    const detail = JSON.stringify((await runsOf(account)).map((run) => JSON.parse(run.detail)));
    expect(detail).toContain(
      'http: pager.example.com is not on the allow-list of hosts the engine may call (the ITSM_HTTP_ALLOW var)',
    );
    expect(detail).not.toContain('--http-allow');
  });

  it('names ITSM_RULES_FROM when a first drain starts at the newest event', async () => {
    const account = 802;
    await createIncident(account, { description: 'printer jam', priority: 'low' });
    const logs: string[] = [];
    await deliver(newWorker(logs), [{ account }], {
      env: { ...workerEnv, ITSM_RULES_FROM: 'latest' },
    });
    expect(logs).toContain(
      `drain: account ${account} starts at the newest event (ITSM_RULES_FROM = "latest")`,
    );
    expect(logs.join('\n')).not.toContain('--from');
  });
});
