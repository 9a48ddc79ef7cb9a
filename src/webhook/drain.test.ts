// processEvent against the embedded ITSM API on 127.0.0.1 and real SQLite stores: what happens to
// once_per keys when an evaluation took them and then stopped before its plan was stored. The
// engine store is the real SQLite adapter; the only stand-in is one failing savePlan (the disk or
// the process failing at that instant), which cannot be caused from outside.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestItsm, TEST_API_KEY, type TestItsm } from '../../test/helpers/itsm.js';
import { loadRules } from '../engine/load.js';
import { createItsmClient, ItsmRequestError } from '../itsm/client.js';
import type { ItsmEvent } from '../itsm/schemas.js';
import { loadMigrations } from '../runtime/node.js';
import type { EngineStore } from '../storage/engine-port.js';
import { createSqliteEngineStore } from '../storage/sqlite-engine.js';
import { createSqlitePipelineStore } from '../storage/sqlite-pipeline.js';
import { type PipelineDeps, processEvent } from './drain.js';

const RULE = `
on:
  type: incident
  events: [add]
when: {"!=": [{var: object.priority}, critical]}
once_per: {var: object.category}
then:
  - update: {priority: critical}
`;

describe('once_per keys of an evaluation that stopped before its plan was stored', () => {
  let itsm: TestItsm;
  let store: EngineStore;
  let deps: PipelineDeps;
  let failNextSave: Error | null;

  beforeEach(async () => {
    itsm = await startTestItsm();
    const migrations = loadMigrations();
    store = createSqliteEngineStore({ path: ':memory:', migrations });
    failNextSave = null;
    const failing: EngineStore = {
      ...store,
      async savePlan(plan) {
        const error = failNextSave;
        failNextSave = null;
        if (error) throw error;
        return store.savePlan(plan);
      },
    };
    const loaded = loadRules([{ path: 'rules/incident/raise.yaml', text: RULE }]);
    if (!loaded.ruleSet) throw new Error('the test rule does not load');
    const ruleSet = loaded.ruleSet;
    deps = {
      client: createItsmClient({
        baseUrl: `${itsm.url}/v1`,
        auth: { apiKey: TEST_API_KEY },
        asUser: 'itsm-rules',
        retry: { maxAttempts: 1 },
      }),
      engineStore: failing,
      pipelineStore: createSqlitePipelineStore({ path: ':memory:', migrations }),
      rules: () => ruleSet,
      engineUser: 'itsm-rules',
    };
  });

  afterEach(async () => {
    await deps.pipelineStore.close();
    await store.close();
    await itsm.close();
  });

  async function createIncident(body: object): Promise<{ id: string; event: ItsmEvent }> {
    const created = await itsm.call('POST', '/v1/accounts/1/itsm/incidents', { body });
    const events = await deps.client.events(1);
    const event = events.objects.find((e) => e.metadata.id === created.json.id);
    if (!event) throw new Error('no event for the incident');
    return { id: created.json.id, event };
  }

  const priorityOf = async (id: string) =>
    (await itsm.call('GET', `/v1/accounts/1/itsm/incidents/${id}`)).json.priority;

  it('gives the keys back when the failure is recorded as final, so the next incident is acted on', async () => {
    const first = await createIncident({ category: 'network', priority: 'low' });
    failNextSave = new Error('disk I/O error');
    const failed = await processEvent(deps, first.event);
    expect(failed.run.outcome).toBe('failed');
    expect(failed.run.summary).toBe('failed: disk I/O error');

    const second = await createIncident({ category: 'network', priority: 'low' });
    const acted = await processEvent(deps, second.event);
    expect(acted.run.outcome).toBe('done');
    expect(await priorityOf(second.id)).toBe('critical');
  });

  it('gives the keys back when the event is tried again and no longer matches', async () => {
    const first = await createIncident({ category: 'network', priority: 'low' });
    failNextSave = new ItsmRequestError('connection reset', {
      code: 'ITSM_NETWORK_ERROR',
      method: 'POST',
      path: 'plans',
      retryable: true,
      attempts: 1,
      cause: null,
    });
    await expect(processEvent(deps, first.event)).rejects.toThrow('connection reset');
    // Someone raised it by hand before the retry: the rule no longer matches the first incident.
    await itsm.call('PATCH', `/v1/accounts/1/itsm/incidents/${first.id}`, {
      body: { priority: 'critical' },
    });
    const retried = await processEvent(deps, first.event);
    expect(retried.run.outcome).toBe('no_match');

    const second = await createIncident({ category: 'network', priority: 'low' });
    expect((await processEvent(deps, second.event)).run.outcome).toBe('done');
    expect(await priorityOf(second.id)).toBe('critical');
  });

  it('keeps the key of a plan that ran, so a later incident of the same key is left alone', async () => {
    const first = await createIncident({ category: 'network', priority: 'low' });
    expect((await processEvent(deps, first.event)).run.outcome).toBe('done');
    const second = await createIncident({ category: 'network', priority: 'low' });
    expect((await processEvent(deps, second.event)).run.outcome).toBe('no_match');
    expect(await priorityOf(second.id)).toBe('low');
  });
});
