// One rule for account ids on every surface (src/itsm/account-id.ts): the API's
// /v1/accounts/{id} routes, `--token T:ACCOUNT`, the receiver's JSON and form bodies, and the
// engine's /runs?account= and /admin/schedules/run accounts. Each surface gets the same table of
// edges, so an id the API accepts (and notifies) is never one the receiver refuses.
import { afterEach, describe, expect, it } from 'vitest';
import { toEventInput } from '../../src/engine/event-input.js';
import { ACCOUNT_ID_RULE, parseAccountId } from '../../src/itsm/account-id.js';
import { startTestItsm, type TestItsm } from '../helpers/itsm.js';
import {
  eventually,
  spawnCli,
  spawnItsmServer,
  startTestEngine,
  type TestEngine,
  writeRules,
} from '../helpers/serve.js';

const MAX = Number.MAX_SAFE_INTEGER;

/** Spellings in a URL path, a query string, a form body or a flag: [text, id or null]. */
const TEXT_EDGES: [string, number | null][] = [
  ['0', null],
  ['00', null],
  ['01', null],
  ['-1', null],
  ['+1', null],
  ['1.5', null],
  ['1e3', null],
  [' 1', null],
  ['1 ', null],
  ['0x1', null],
  ['', null],
  [String(2 ** 53), null],
  ['99999999999999999999', null],
  ['1', 1],
  ['1000', 1000],
  [String(MAX), MAX],
];

/** Values of a JSON body, written as JSON text: [json, id or null]. */
const JSON_EDGES: [string, number | null][] = [
  ['0', null],
  ['-1', null],
  ['1.5', null],
  ['9007199254740992', null],
  ['9007199254740993', null],
  ['"0"', null],
  ['"00"', null],
  ['"01"', null],
  ['" 1"', null],
  ['"1e3"', null],
  ['"1.5"', null],
  ['"9007199254740992"', null],
  ['null', null],
  ['true', null],
  ['[1]', null],
  ['{"id":1}', null],
  // JSON numbers are judged by value: the parser does not keep their spelling.
  ['1e3', 1000],
  ['1', 1],
  ['"1"', 1],
  [String(MAX), MAX],
  [`"${MAX}"`, MAX],
];

describe('parseAccountId', () => {
  it.each(TEXT_EDGES)('reads the text %j as %j', (text, expected) => {
    expect(parseAccountId(text)).toBe(expected);
  });

  it.each(JSON_EDGES)('reads the JSON value %s as %j', (json, expected) => {
    expect(parseAccountId(JSON.parse(json))).toBe(expected);
  });
});

describe('itsm-rules test: the account of an event file', () => {
  it.each(JSON_EDGES)('reads the account %s by the rule', (json, expected) => {
    const data = {
      type: 'add',
      account: JSON.parse(json),
      object: { id: 'F1', type: 'incident' },
    };
    if (expected === null) {
      expect(() => toEventInput(data, new Date())).toThrow(ACCOUNT_ID_RULE);
    } else {
      expect(toEventInput(data, new Date()).event.account).toBe(expected);
    }
  });
});

describe('the ITSM API', () => {
  let server: TestItsm;
  afterEach(async () => {
    await server?.close();
  });

  it('answers every edge of /v1/accounts/{id} by the rule, and the refusals name it', async () => {
    server = await startTestItsm();
    for (const [text, expected] of TEXT_EDGES) {
      if (text === '') continue; // accounts//itsm is another route
      const path = `/v1/accounts/${encodeURIComponent(text)}/itsm/incidents`;
      const answer = await server.call('GET', path);
      if (expected === null) {
        expect(answer.status, `${text}: ${answer.text}`).toBe(400);
        expect(answer.json.error_code).toBe('invalid_parameters');
        expect(answer.json.message).toContain(ACCOUNT_ID_RULE);
        expect(answer.json.message).toContain(JSON.stringify(text));
      } else {
        expect(answer.status, `${text}: ${answer.text}`).toBe(200);
      }
    }
  });

  it('writes nothing and notifies nothing for account 0', async () => {
    server = await startTestItsm();
    const created = await server.call('POST', '/v1/accounts/0/itsm/incidents', {
      body: { description: 'never stored' },
    });
    expect(created.status, created.text).toBe(400);
    const events = await server.call('GET', '/v1/accounts/00/events');
    expect(events.status).toBe(400);
    expect(await server.store.listEventAccounts()).toEqual([]);
  });

  it('keeps accounts/me working for a Bearer token, bound to the largest account id', async () => {
    server = await startTestItsm({ tokens: { tok: { account: MAX } } });
    const answer = await server.call('GET', '/v1/accounts/me/itsm/incidents', {
      auth: 'Bearer tok',
    });
    expect(answer.status, answer.text).toBe(200);
  });
});

describe('--token TOKEN:ACCOUNT', () => {
  it.each(TEXT_EDGES.filter(([, id]) => id === null))(
    'refuses the account %j with exit 2 and the rule',
    async (text) => {
      const cli = spawnCli(['itsm-server', '--port', '0', '--token', `tok:${text}`]);
      const exit = await cli.exited;
      expect(exit.code, cli.stderr()).toBe(2);
      expect(cli.stderr()).toContain(ACCOUNT_ID_RULE);
    },
  );

  it('accepts the largest account id and binds the token to it', async () => {
    const cli = await spawnItsmServer(['--port', '0', '--token', `tok:${MAX}`]);
    try {
      const answer = await fetch(`${cli.url}/v1/accounts/${MAX}/itsm/incidents`, {
        headers: { Authorization: 'Bearer tok' },
      });
      expect(answer.status).toBe(200);
    } finally {
      await cli.stop();
    }
  });
});

describe('the engine', () => {
  let engine: TestEngine;
  let rules: { dir: string; remove(): void };
  afterEach(async () => {
    await engine?.close();
    rules?.remove();
  });

  async function start(): Promise<TestEngine> {
    rules = writeRules({});
    engine = await startTestEngine({ rulesDir: rules.dir });
    return engine;
  }

  it('takes exactly the JSON accounts of the rule in a signed notification', async () => {
    await start();
    for (const [json, expected] of JSON_EDGES) {
      const answer = await engine.notify(`{"account":${json}}`);
      if (expected === null) {
        expect(answer.status, `${json}: ${answer.text}`).toBe(400);
        expect(answer.json.message).toContain(ACCOUNT_ID_RULE);
      } else {
        expect(answer.status, `${json}: ${answer.text}`).toBe(200);
        expect(answer.json).toEqual({ accepted: true, account: expected });
      }
    }
  });

  it('takes exactly the form accounts of the rule in a signed notification', async () => {
    await start();
    for (const [text, expected] of TEXT_EDGES) {
      const answer = await engine.notify(`account=${encodeURIComponent(text)}`, {
        contentType: 'application/x-www-form-urlencoded',
      });
      expect(answer.status, `${text}: ${answer.text}`).toBe(expected === null ? 400 : 200);
      if (expected !== null) expect(answer.json.account).toBe(expected);
    }
  });

  it('drains a write the API made in the largest account (what the API notifies, the receiver takes)', async () => {
    await start();
    const created = await engine.call('POST', `/v1/accounts/${MAX}/itsm/incidents`, {
      body: { description: 'top edge' },
    });
    expect(created.status, created.text).toBe(201);
    const runs = await eventually(async () => {
      const answer = await engine.call('GET', `/runs?account=${MAX}`);
      return answer.status === 200 && answer.json.count === 1 && answer.json;
    }, `a run record of account ${MAX}`);
    expect(runs.objects[0].account).toBe(MAX);
  });

  it('filters /runs by account only for ids of the rule', async () => {
    await start();
    for (const [text, expected] of TEXT_EDGES) {
      const answer = await engine.call('GET', `/runs?account=${encodeURIComponent(text)}`);
      expect(answer.status, `${text}: ${answer.text}`).toBe(expected === null ? 400 : 200);
      if (expected === null) expect(answer.json.message).toContain(ACCOUNT_ID_RULE);
    }
  });

  it('takes /admin/schedules/run accounts only by the rule, naming the bad item', async () => {
    await start();
    for (const [json, expected] of JSON_EDGES) {
      const answer = await engine.call('POST', '/admin/schedules/run', {
        body: `{"accounts":[1,${json}]}`,
      });
      expect(answer.status, `${json}: ${answer.text}`).toBe(expected === null ? 400 : 200);
      if (expected === null) {
        expect(answer.json.message).toContain('accounts[1]');
        expect(answer.json.message).toContain(ACCOUNT_ID_RULE);
      }
    }
  });
});
