// A rule that triggers itself (on.self) but whose own write makes its condition false, as the
// loop check now accepts it, run by the engine: the chain stops where the analysis says, long
// before the 5-hop limit. The engine and the embedded ITSM API talk over real HTTP on 127.0.0.1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestEngine, type TestEngine, writeRules } from '../helpers/serve.js';

type Json = Record<string, unknown>;
const ACCOUNT = 31;

describe('rules that trigger themselves and stop by their own write', () => {
  let engine: TestEngine;
  let rules: { dir: string; remove(): void };

  beforeAll(async () => {
    rules = writeRules({
      'incident/escalate-below-three.yaml': [
        'on: {type: incident, self: true}',
        'when: {"<": [{var: object.escalation}, 3]}',
        'then: [{escalate: {}}]',
      ].join('\n'),
      'problem/raise-urgency.yaml': [
        'on: {type: problem, self: true}',
        'when: {"!=": [{var: object.urgency}, high]}',
        'then: [{update: {urgency: high}}]',
      ].join('\n'),
    });
    engine = await startTestEngine({ rulesDir: rules.dir });
  });

  afterAll(async () => {
    await engine?.close();
    rules?.remove();
  });

  const path = (type: string, id = '') => `/v1/accounts/${ACCOUNT}/itsm/${type}${id && `/${id}`}`;
  const create = async (type: string, body: Json) => {
    const response = await engine.call('POST', path(type), { body });
    expect(response.status, response.text).toBe(201);
    return (response.json as Json).id as string;
  };
  const read = async (type: string, id: string) =>
    (await engine.call('GET', path(type, id))).json as Json;

  it('escalates three times for escalation < 3, then stops on its own', async () => {
    const incident = await create('incidents', { priority: 'low', description: 'chain' });
    await eventually(
      async () => (await read('incidents', incident)).escalation === 3,
      'the incident to reach escalation 3',
    );
    // Events are drained in order: once the problem created now has been acted on, the event of
    // the third escalation (before it in the log) has been evaluated too.
    const problem = await create('problems', { urgency: 'low', description: 'marker' });
    await eventually(
      async () => (await read('problems', problem)).urgency === 'high',
      'the problem to be raised to high urgency',
    );
    const marker = await create('problems', { urgency: 'medium', description: 'second marker' });
    await eventually(
      async () => (await read('problems', marker)).urgency === 'high',
      'the second problem to be raised to high urgency',
    );
    expect(await read('incidents', incident)).toMatchObject({
      escalation: 3,
      priority: 'critical',
    });
    // The first problem's own write (urgency high) triggered it once more, and it stopped.
    expect(await read('problems', problem)).toMatchObject({ urgency: 'high' });
    const runs = (await engine.call('GET', `/runs?page_size=100&account=${ACCOUNT}`)).json as {
      objects: Json[];
    };
    const incidentRuns = runs.objects.filter(
      (run) => (run.object as Json | null)?.type === 'incident',
    );
    expect(incidentRuns.map((run) => run.self_hops).sort()).toEqual([0, 1, 2, 3]);
  });
});
