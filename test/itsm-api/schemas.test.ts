// The shared zod read schemas (src/itsm/schemas.ts) against two sources of truth: the seed's own
// example responses, and what the embedded server actually answers. The client and the engine
// parse responses with these schemas, so a drift on either side must fail here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  errorBodySchema,
  eventListSchema,
  latestCursorSchema,
  objectListSchema,
  READ_SCHEMAS,
  userSchema,
  webhookSchema,
} from '../../src/itsm/schemas.js';
import {
  SEED_ARTICLE_CREATE,
  SEED_ASSET_CREATE,
  SEED_CHANGE_CREATE,
  SEED_INCIDENT_CREATE,
  SEED_OBJECT_CREATE,
  SEED_PROBLEM_CREATE,
  SEED_USERS,
} from '../fixtures/seed-examples.js';
import { startTestItsm, TEST_APP_ID, type TestItsm } from '../helpers/itsm.js';
import { startReceiver, type TestReceiver } from '../helpers/receiver.js';

// Response bodies copied from shared/seed/kloudless-itsm-api.txt.
const SEED_RESPONSES = {
  incident: {
    api: 'itsm',
    assignee: {
      type: 'user',
      api: 'team',
      id: 'uNTEzNzE1M2NjNjExMjI3YzAwMGJiZDFiZDhjZDIwMDc=',
      name: 'Vinod Chandru',
      email: 'vinod@kloudless.com',
    },
    category: 'hardware',
    created: '2017-11-27T09:01:33Z',
    description: "User can't access email on mail.company.com.",
    escalation: 0,
    id: 'Fc1GyHgRrEKK0zzPXPyj1MB2UgJlb3Bx72LJ-npTpEWHy4sZmnXUiX3pY-tDyHWwl',
    impact: 'high',
    modified: '2017-11-27T09:01:33Z',
    priority: 'medium',
    problem: 'F3iGnrn9YFNJ7sqGfh2ofTsF1Hv6WCFdQs8UAZKZC5f0xIRY81hy872UNWxPncRFT',
    due_date: '2017-10-04T20:15:37Z',
    requester: {
      type: 'user',
      api: 'team',
      id: 'uNTEzNzE1M2NjNjExMjI3YzAwMGJiZDFiZDhjZDIwMDY=',
      name: 'Timothy Liu',
      email: 'timothy@kloudless.com',
    },
    status: 1,
    type: 'incident',
    urgency: 'medium',
    href: 'https://api.kloudless.com/v1/accounts/123/itsm/incidents/Fc1GyHgRrEKK0zzPXPyj1MB2UgJlb3Bx72LJ-npTpEWHy4sZmnXUiX3pY-tDyHWwl',
  },
  change: {
    active: true,
    api: 'itsm',
    category: 'Software',
    created: '2017-12-01T09:43:50Z',
    description: 'We are going to put another 100 GB drive on the floor 2 server',
    escalation: 1,
    id: 'FpTGcOSmGFokkYe0ruf4SuQdJ7JjACRI6S4mg6myJ-uR9t3hxp1XVtEMBxP6E1je9',
    impact: 'low',
    modified: '2017-12-01T09:43:50Z',
    priority: 'high',
    start_date: '2017-12-01T15:10:00Z',
    end_date: '2017-12-01T15:20:00Z',
    status: 0,
    type: 'change',
    urgency: 'high',
    href: 'https://api.kloudless.com/v1/accounts/123/itsm/changes/FpTGcOSmGFokkYe0ruf4SuQdJ7JjACRI6S4mg6myJ-uR9t3hxp1XVtEMBxP6E1je9',
  },
  article: {
    active: true,
    api: 'itsm',
    author: {
      type: 'user',
      api: 'team',
      id: 'uNDZkMTRmMDRhOWZlMTk4MTAxNDJlNDBjNmIwNzE1MTI=',
      name: 'David Thorman',
      email: 'dthorman@kloudless.com',
    },
    created: '2017-12-02T08:49:41Z',
    description: 'detail steps on how to set up the dev env',
    id: 'FkBoZX_HGUZMd9hYgvGl0nHAt8D1z-qJLezuKU3-CCNRJxXWBdfJkfjiTW_IGvt9o',
    modified: '2017-12-02T08:49:41Z',
    text: '<p>Follow the instructions below</p>',
    topic: 'Development environment set up manual',
    type: 'article',
    href: 'https://api.kloudless.com/v1/accounts/123/itsm/articles/FkBoZX_HGUZMd9hYgvGl0nHAt8D1z-qJLezuKU3-CCNRJxXWBdfJkfjiTW_IGvt9o',
  },
  asset: {
    api: 'itsm',
    created: '2017-12-03T14:41:44Z',
    department: '221f79b7c6112284005d646b76ab978c',
    id: 'F2MLXtBS9d2ffbhco2CiHvVj9bSCiGAVlAG29GJWwt6GN98QRJmDEuL2KnzLfXUO3',
    model: 'f10008893710200044e0bfc8bcbe5d80',
    modified: '2017-12-03T14:41:44Z',
    name: 'Samsung SyncMaster 24" Class BackLight LED',
    quantity: 1,
    type: 'asset',
    href: 'https://api.kloudless.com/v1/accounts/123/itsm/assets/F2MLXtBS9d2ffbhco2CiHvVj9bSCiGAVlAG29GJWwt6GN98QRJmDEuL2KnzLfXUO3',
  },
  object: {
    api: 'itsm',
    type: 'object',
    raw: { object: {}, type: 'sys_user', id: '02826bf03710200044e0bfc8bcbe5d3f' },
    id: 'F4vXMrEqeBUal2U3ShiyBHGbcz8mHkYBlGECV22VFwaY-MnHmJUq5QDMUyRKSSryv',
    href: 'https://api.kloudless.com/v1/accounts/123/itsm/objects/F4vXMrEqeBUal2U3ShiyBHGbcz8mHkYBlGECV22VFwaY-MnHmJUq5QDMUyRKSSryv?raw_type=sys_user',
  },
} as const;

describe('the read schemas and the seed', () => {
  it.each(Object.entries(SEED_RESPONSES))('parse the seed example response of %s', (type, body) => {
    const schema = READ_SCHEMAS[type as keyof typeof READ_SCHEMAS];
    expect(schema.parse(body)).toEqual(body);
  });

  it('parse the seed example list of incidents', () => {
    const list = {
      total: 1,
      count: 1,
      page: 1,
      next_page: null,
      objects: [SEED_RESPONSES.incident],
      type: 'object_list',
      api: 'itsm',
    };
    expect(objectListSchema(READ_SCHEMAS.incident).parse(list)).toEqual(list);
  });

  it('refuse a value outside an enumeration, so a drifting server is noticed', () => {
    expect(() =>
      READ_SCHEMAS.incident.parse({ ...SEED_RESPONSES.incident, priority: 'urgent' }),
    ).toThrow();
  });
});

describe('the read schemas and the embedded server', () => {
  let itsm: TestItsm;
  let receiver: TestReceiver;
  const created: Record<string, unknown> = {};
  const BASE = '/v1/accounts/123/itsm';

  beforeAll(async () => {
    receiver = await startReceiver({ appId: TEST_APP_ID });
    itsm = await startTestItsm({ users: SEED_USERS, webhooks: [receiver.url] });
    await itsm.webhooksReady;
    const incident = await itsm.call('POST', `${BASE}/incidents`, {
      body: { ...SEED_INCIDENT_CREATE, problem: '' },
    });
    const { problem: _p, ...problemBody } = SEED_PROBLEM_CREATE;
    const problem = await itsm.call('POST', `${BASE}/problems`, {
      body: { ...problemBody, incident: incident.json.id },
    });
    const change = await itsm.call('POST', `${BASE}/changes`, {
      body: { ...SEED_CHANGE_CREATE, incident: incident.json.id, problem: problem.json.id },
    });
    const article = await itsm.call('POST', `${BASE}/articles`, { body: SEED_ARTICLE_CREATE });
    const asset = await itsm.call('POST', `${BASE}/assets`, { body: SEED_ASSET_CREATE });
    const object = await itsm.call('POST', `${BASE}/objects?raw_type=sys_user`, {
      body: SEED_OBJECT_CREATE,
    });
    Object.assign(created, { incident, problem, change, article, asset, object });
    await itsm.call('PATCH', `${BASE}/incidents/${incident.json.id}`, {
      body: { priority: 'critical' },
    });
  });
  afterAll(async () => {
    await itsm.close();
    await receiver.close();
  });

  const PLURAL = {
    incident: 'incidents',
    problem: 'problems',
    change: 'changes',
    article: 'articles',
    asset: 'assets',
    object: 'objects',
  };

  it.each(Object.keys(PLURAL))(
    'parse every %s the server returns, with and without raw',
    async (type) => {
      const schema = READ_SCHEMAS[type as keyof typeof READ_SCHEMAS];
      const query = type === 'object' ? '?raw_type=sys_user' : '';
      const { json: first } = created[type] as { json: { id: string } };
      expect(schema.parse(first)).toEqual(first);
      for (const headers of [{}, { 'X-Kloudless-Raw-Data': 'true' }] as Record<string, string>[]) {
        const one = await itsm.call(
          'GET',
          `${BASE}/${PLURAL[type as keyof typeof PLURAL]}/${first.id}${query}`,
          { headers },
        );
        expect(schema.parse(one.json)).toEqual(one.json);
        const list = await itsm.call(
          'GET',
          `${BASE}/${PLURAL[type as keyof typeof PLURAL]}${query}`,
          { headers },
        );
        expect(objectListSchema(schema).parse(list.json)).toEqual(list.json);
      }
    },
  );

  it('parse the event log, the latest cursor and team users', async () => {
    const events = await itsm.call('GET', '/v1/accounts/123/events', {
      headers: { 'X-Kloudless-Raw-Data': 'true' },
    });
    const parsed = eventListSchema.parse(events.json);
    expect(parsed.objects.map((e) => e.type)).toContain('update');
    const update = parsed.objects.find((e) => e.type === 'update');
    expect(READ_SCHEMAS.incident.parse(update?.metadata).priority).toBe('critical');
    expect(READ_SCHEMAS.incident.parse(update?.previous_metadata).priority).toBe('medium');
    latestCursorSchema.parse((await itsm.call('GET', '/v1/accounts/123/events/latest')).json);
    const users = await itsm.call('GET', '/v1/accounts/123/team/users');
    expect(objectListSchema(userSchema).parse(users.json).total).toBe(4);
  });

  it('parse webhooks, notifications and error bodies', async () => {
    const hooks = await itsm.call('GET', `/v1/applications/${TEST_APP_ID}/webhooks`);
    expect(objectListSchema(webhookSchema).parse(hooks.json).objects[0]?.url).toBe(receiver.url);
    await itsm.itsm.notifier.idle();
    const notification = receiver.requests.find((r) => r.body.length > 0);
    expect(
      z
        .object({ account: z.literal(123), subscription: z.number().int() })
        .parse(JSON.parse(String(notification?.body))),
    ).toBeTruthy();
    const error = await itsm.call('GET', `${BASE}/incidents/nope`);
    expect(errorBodySchema.parse(error.json)).toMatchObject({
      error_code: 'not_found',
      status_code: 404,
    });
  });
});
