// A change's risk over the connector is a /v1 word for the instance's choice code 1 (very high)
// to 4 (low); both directions are proven by the /v1 suite over the connector (test/itsm-api,
// project `connector`). An instance may have more choices than the four (a customised list): a
// record with such a code stays readable, its risk left out and `raw` showing the code. The
// instance is the Table API face on 127.0.0.1 over real HTTP; the face knows only the four
// codes, so the customised list is `customisedInstance`, a fake of a real instance standing
// between the connector and the face: it answers the change_request records it passes on with
// risk "5".
import { expect, it } from 'vitest';
import type { StoredObject } from '../../src/storage/port.js';
import { useInstance } from '../helpers/instance.js';
import { callHttp } from '../helpers/itsm.js';

const instance = useInstance();

/** An instance whose change_request.risk has a fifth choice (fake: the face has four). */
const customisedInstance = (async (input: string | URL | Request, init?: RequestInit) => {
  const answer = await fetch(input, init);
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (!url.pathname.includes('/table/change_request') || answer.status !== 200) return answer;
  const text = (await answer.text()).replace(/"risk":"\d"/g, '"risk":"5"');
  return new Response(text, { status: answer.status, headers: answer.headers });
}) as typeof globalThis.fetch;

async function connect(fetchOf: typeof globalThis.fetch, logs: string[]) {
  const shown: StoredObject[] = [];
  const connection = await instance.connect({
    fetch: fetchOf,
    log: (line) => logs.push(line),
    render: (object) => shown.push(object),
  });
  return { ...connection, shown };
}

async function changeOnInstance(risk: string): Promise<string> {
  const made = await callHttp(instance.face().url, 'POST', '/api/now/table/change_request', {
    auth: `Basic ${btoa('ann:pw')}`,
    body: { short_description: 'swap the core switch', risk },
  });
  expect(made.status, made.text).toBe(201);
  return made.json.result.sys_id;
}

it('reads a change whose risk is a code outside 1 to 4: risk left out, raw shows the code', async () => {
  const logs: string[] = [];
  const { feed, shown } = await connect(customisedInstance, logs);
  const sysId = await changeOnInstance('3');
  await feed.pollOnce();
  const change = shown.find((o) => o.upstreamId === sysId);
  expect(change?.type).toBe('change');
  expect(change?.fields).not.toHaveProperty('risk');
  expect(change?.upstreamRecord?.risk).toBe('5');
  expect(logs.some((l) => /risk must be 1 \(very high\).*got "5"; risk left out/.test(l))).toBe(
    true,
  );
});
