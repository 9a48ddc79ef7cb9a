// `POST /servicenow/push` of `itsm-rules itsm-server --servicenow URL` started without
// --sn-push-secret, over real HTTP (the Table API face in its own process as the instance): a
// 404 naming the flag that turns it on. The Worker names its secret instead
// (test/worker/connector/config.test.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callHttp } from '../helpers/itsm.js';
import { type CliProcess, spawnItsmServer } from '../helpers/serve.js';

const TIMEOUT = 30_000;
let face: CliProcess & { url: string };
let connector: CliProcess & { url: string };

beforeAll(async () => {
  face = await spawnItsmServer([
    '--port=0',
    '--db=:memory:',
    '--api-key=face-key',
    '--sn-user=integration:s3cret',
  ]);
  connector = await spawnItsmServer(
    ['--port=0', '--db=:memory:', '--api-key=connector-key', `--servicenow=${face.url}`],
    { ITSM_SN_USERNAME: 'integration', ITSM_SN_PASSWORD: 's3cret', ITSM_SN_POLL_MS: '0' },
  );
}, TIMEOUT);

afterAll(async () => {
  await connector?.stop();
  await face?.stop();
});

describe('the push with no push secret on Node', () => {
  it('answers 404 naming --sn-push-secret', async () => {
    const answer = await callHttp(connector.url, 'POST', '/servicenow/push', {
      auth: 'Bearer anything',
      body: { table: 'incident', sys_id: 'a'.repeat(32) },
    });
    expect(answer.status).toBe(404);
    expect(answer.json.message).toBe(
      '/servicenow/push is off: start the server with --sn-push-secret to let a Business Rule push changes',
    );
  });
});
