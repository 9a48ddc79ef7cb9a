// Closing the engine while a rule's `http` call hangs: the engine waits a grace for it, then gives
// it up instead of waiting through the call's timeouts and retries (30 s and more, past a
// supervisor's kill). The object is parked with the reason, and the endpoint saw the call once:
// the attempts left fail at once, without reaching it.
import type { ServerResponse } from 'node:http';
import { afterAll, expect, it } from 'vitest';
import {
  type Cleanups,
  callOutRule,
  createIncident,
  runCleanups,
  startEngineWithEndpoints,
  startHttpEndpoint,
} from '../helpers/pipeline.js';
import { eventually } from '../helpers/serve.js';

const cleanups: Cleanups = [];
afterAll(() => runCleanups(cleanups));

it('gives up a hanging http call after the grace when the engine closes, parking its object', async () => {
  /** Calls that arrived, never answered while the engine runs. */
  const held: ServerResponse[] = [];
  const endpoint = await startHttpEndpoint(cleanups, (request, response) => {
    request.resume();
    request.on('end', () => held.push(response));
  });
  cleanups.push(async () => {
    for (const response of held) response.destroy();
  });
  const engine = await startEngineWithEndpoints(
    cleanups,
    { 'incident/call-out.yaml': callOutRule({ url: endpoint }) },
    [endpoint],
    { httpStopGraceMs: 50 },
  );

  await createIncident(engine, 81, { description: 'the call hangs' });
  await eventually(() => held.length === 1, 'the call to reach the endpoint');

  await engine.close();

  const parked = engine.logs.find((line) => line.includes(' PARKED at event '));
  expect(parked, engine.logs.join('\n')).toContain(
    'the engine is stopping: the call was given up, and is made again after the restart',
  );
  // The attempts after the first failed at once: the endpoint saw the call once.
  expect(held).toHaveLength(1);
}, 20_000);
