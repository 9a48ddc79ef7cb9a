// Byte-bounded pages (src/server/page-budget.ts) over real HTTP: 12 incidents of about 900 KB
// each, and a page budget of 3 MiB (the default is 8 MiB; the option keeps the test small). A
// page of events or objects stops at the budget (never below one item), its cursor or next_page
// continues right after it, and a client walking the pages sees every item exactly once. The
// engine's drain asks for smaller pages once the API shortens them, and still acts on every event.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRules } from '../../src/engine/load.js';
import { createItsmClient } from '../../src/itsm/client.js';
import { loadMigrations } from '../../src/runtime/node.js';
import { DEFAULT_MAX_PAGE_BYTES, utf8Length } from '../../src/server/page-budget.js';
import { createSqliteEngineStore } from '../../src/storage/sqlite-engine.js';
import { createSqlitePipelineStore } from '../../src/storage/sqlite-pipeline.js';
import { drainAccount } from '../../src/webhook/drain.js';
import { startTestItsm, TEST_API_KEY, type TestItsm } from '../helpers/itsm.js';

const BUDGET = 3 * 1024 * 1024;
const BIG = 900 * 1024;
const COUNT = 12;
const ACCOUNT = 5;
const INCIDENTS = `/v1/accounts/${ACCOUNT}/itsm/incidents`;
/** The envelope around a page's items (total, cursor, type...): well under a kilobyte. */
const ENVELOPE = 1024;

let server: TestItsm;
const ids: string[] = [];

beforeAll(async () => {
  server = await startTestItsm({ maxPageBytes: BUDGET });
  for (let i = 0; i < COUNT; i++) {
    // Each description differs, and holds some non-ASCII text, so bytes are not characters.
    const description = `${String(i).padStart(2, '0')} é ${'x'.repeat(BIG)}`;
    const created = await server.call('POST', INCIDENTS, { body: { description } });
    expect(created.status, created.text.slice(0, 200)).toBe(201);
    ids.push(created.json.id);
  }
  // One small incident in another account: a page of small items is not shortened.
  await server.call('POST', '/v1/accounts/6/itsm/incidents', { body: { description: 'small' } });
}, 60_000);

afterAll(async () => {
  await server?.close();
});

describe('events pages', () => {
  it('stop at the byte budget: fewer events than page_size, the cursor after the last, the rest in remaining', async () => {
    const page = await server.call('GET', `/v1/accounts/${ACCOUNT}/events?page_size=1000`);

    expect(page.status).toBe(200);
    expect(page.json.count).toBeGreaterThan(0);
    expect(page.json.count).toBeLessThan(COUNT);
    expect(page.json.objects).toHaveLength(page.json.count);
    expect(page.json.remaining).toBe(COUNT - page.json.count);
    expect(page.json.cursor).toBe(page.json.objects.at(-1).id);
    expect(utf8Length(page.text)).toBeLessThanOrEqual(BUDGET + ENVELOPE);
    expect(page.headers.get('content-type')).toBe('application/json');
  });

  it('lose nothing and repeat nothing for a client paging by cursor', async () => {
    const seen: string[] = [];
    let cursor = '';
    for (let pages = 0; pages < COUNT + 1; pages++) {
      const page = await server.call(
        'GET',
        `/v1/accounts/${ACCOUNT}/events?page_size=1000&cursor=${cursor}`,
      );
      expect(page.status, page.text.slice(0, 200)).toBe(200);
      seen.push(...page.json.objects.map((e: { metadata: { id: string } }) => e.metadata.id));
      cursor = page.json.cursor;
      if (page.json.remaining === 0) break;
    }
    expect(seen).toEqual(ids);
  });

  it('serve a single event larger than the budget whole, one per page', async () => {
    const tight = await startTestItsm({ maxPageBytes: 100 * 1024 });
    try {
      for (const n of [1, 2]) {
        await tight.call('POST', INCIDENTS, { body: { description: `${n}${'y'.repeat(BIG)}` } });
      }
      const page = await tight.call('GET', `/v1/accounts/${ACCOUNT}/events?page_size=5`);
      expect(page.json).toMatchObject({ count: 1, remaining: 1 });
      expect(page.json.objects[0].metadata.description.length).toBeGreaterThan(BIG);
      const list = await tight.call('GET', `${INCIDENTS}?page_size=5`);
      expect(list.json).toMatchObject({ count: 1, total: 2, next_page: 'offset:1' });
    } finally {
      await tight.close();
    }
  });

  it('keep page_size when the events are small', async () => {
    const page = await server.call('GET', '/v1/accounts/6/events?page_size=1000');
    expect(page.json).toMatchObject({ count: 1, remaining: 0 });
  });
});

describe('object lists', () => {
  it('stop at the byte budget with a next_page token that continues right after the last object', async () => {
    const first = await server.call('GET', `${INCIDENTS}?page_size=10`);

    expect(first.status).toBe(200);
    const count = first.json.count;
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(10);
    expect(first.json).toMatchObject({ total: COUNT, page: 1, next_page: `offset:${count}` });
    expect(utf8Length(first.text)).toBeLessThanOrEqual(BUDGET + ENVELOPE);

    const second = await server.call('GET', `${INCIDENTS}?page_size=10&page=offset:${count}`);
    expect(second.json.page).toBe(`offset:${count}`);
    expect(second.json.objects[0].id).toBe(ids[count]);
  });

  it('never miss an object nor show one twice to a client following next_page', async () => {
    for (const pageSize of [1, 2, 3, 5, 10, 1000]) {
      const seen: string[] = [];
      let page: string | number | null = 1;
      for (let n = 0; page !== null && n < 3 * COUNT; n++) {
        const answer = await server.call(
          'GET',
          `${INCIDENTS}?page_size=${pageSize}&page=${encodeURIComponent(String(page))}`,
        );
        expect(answer.status, answer.text.slice(0, 200)).toBe(200);
        seen.push(...answer.json.objects.map((o: { id: string }) => o.id));
        page = answer.json.next_page;
      }
      expect(seen, `page_size ${pageSize}`).toEqual(ids);
    }
  });

  it('go back to page numbers once the next object starts a whole page', async () => {
    // Pages of 3 at 900 KB fit the budget exactly: plain numbers throughout.
    const first = await server.call('GET', `${INCIDENTS}?page_size=3`);
    expect(first.json).toMatchObject({ count: 3, next_page: 2 });
    // After a token page that ends where a page of 3 starts, the next page is a number again.
    const fromToken = await server.call('GET', `${INCIDENTS}?page_size=3&page=offset:3`);
    expect(fromToken.json).toMatchObject({ count: 3, page: 'offset:3', next_page: 3 });
    const unaligned = await server.call('GET', `${INCIDENTS}?page_size=3&page=offset:1`);
    expect(unaligned.json).toMatchObject({ count: 3, next_page: 'offset:4' });
  });

  it('are walked whole by the typed client, which passes next_page tokens back as given', async () => {
    const client = createItsmClient({
      baseUrl: `${server.url}/v1`,
      auth: { apiKey: TEST_API_KEY },
    });
    const seen: string[] = [];
    for await (const incident of client.list(ACCOUNT, 'incident', { pageSize: 1000 })) {
      seen.push(incident.id);
    }
    expect(seen).toEqual(ids);
  });

  it.each(['offset:', 'offset:-1', 'offset:x', 'offset1', '0'])(
    'refuses page=%s with a 400 naming page',
    async (page) => {
      const answer = await server.call('GET', `${INCIDENTS}?page=${encodeURIComponent(page)}`);
      expect(answer.status).toBe(400);
      expect(answer.json.message).toMatch(/^page must be/);
    },
  );
});

describe('the default budget', () => {
  it('is 8 MiB', () => {
    expect(DEFAULT_MAX_PAGE_BYTES).toBe(8 * 1024 * 1024);
  });
});

describe("the engine's drain", () => {
  it('asks for smaller pages once the API shortens them, and acts on every event once', async () => {
    const asked: number[] = [];
    const migrations = loadMigrations();
    const loaded = loadRules([
      {
        path: 'rules/incident/seen.yaml',
        text: 'on: {type: incident, events: [add]}\nthen:\n  - log: {message: seen}\n',
      },
    ]);
    const ruleSet = loaded.ruleSet;
    if (!ruleSet) throw new Error(`the test rule does not load: ${JSON.stringify(loaded)}`);
    const engineStore = createSqliteEngineStore({ path: ':memory:', migrations });
    const pipelineStore = createSqlitePipelineStore({ path: ':memory:', migrations });
    try {
      const deps = {
        client: createItsmClient({
          baseUrl: `${server.url}/v1`,
          auth: { apiKey: TEST_API_KEY },
          asUser: 'itsm-rules',
          // Records the page sizes the drain asks for; the request itself goes to the server.
          fetch: (input: string | URL | Request, init?: RequestInit) => {
            const url = new URL(String(input));
            if (url.pathname.endsWith('/events')) {
              asked.push(Number(url.searchParams.get('page_size')));
            }
            return fetch(input, init);
          },
        }),
        engineStore,
        pipelineStore,
        rules: () => ruleSet,
        engineUser: 'itsm-rules',
        pageSize: 100,
      };

      const result = await drainAccount(deps, ACCOUNT);

      expect(result).toMatchObject({ events: COUNT, duplicates: 0, caughtUp: true });
      // The first page was shortened (12 events of 900 KB pass 3 MiB), so there were more pages;
      // after it the drain asks for no more than a shortened page held.
      expect(asked[0]).toBe(100);
      expect(asked.length).toBeGreaterThan(1);
      expect(Math.max(...asked.slice(1))).toBeLessThan(10);
      expect(result.pages).toBe(asked.length);
      const runs = await pipelineStore.listRuns({ account: ACCOUNT, limit: 100 });
      expect(runs).toHaveLength(COUNT);
    } finally {
      await pipelineStore.close();
      await engineStore.close();
    }
  });
});
