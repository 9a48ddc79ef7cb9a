// The Worker's own small parts: its settings read from env (every missing or invalid one named),
// the backoff of failed drains, the queue messages it understands, and a bundled rule set with a
// problem refused with the lines `itsm-rules check` prints.
import { createExecutionContext } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import {
  createWorker,
  parseWorkerMessage,
  readWorkerConfig,
  retryDelaySeconds,
  type WorkerEnv,
  WorkerRulesError,
} from '../../src/runtime/worker.js';
import { workerEnv } from './helpers.js';

describe('the settings of the Worker', () => {
  it('reads the required ones and fills in the defaults', () => {
    const config = readWorkerConfig({ ...workerEnv, ITSM_PREVIOUS_KEYS: ' old-1, old-2 ,' });
    expect(config).toMatchObject({
      apiUrl: workerEnv.ITSM_API_URL,
      keys: [workerEnv.ITSM_API_KEY, 'old-1', 'old-2'],
      appId: workerEnv.ITSM_APP_ID,
      engineUser: 'itsm-rules',
      httpAllow: [],
      from: 'oldest',
      pageSize: 100,
      pagesPerMessage: 10,
      objectConcurrency: 8,
      retentionMs: 30 * 86_400_000,
      consoleSessionMs: 8 * 3_600_000,
    });
  });

  it.each([
    [{ ITSM_API_URL: undefined }, /ITSM_API_URL is not set/],
    [{ ITSM_API_URL: '  ' }, /ITSM_API_URL is not set/],
    [{ ITSM_API_URL: 'ftp://itsm.example.com' }, /ITSM_API_URL must be an http\(s\) URL.*"ftp:/],
    [{ ITSM_API_KEY: undefined }, /ITSM_API_KEY is not set; set the secret with/],
    [{ ITSM_APP_ID: '' }, /ITSM_APP_ID is not set/],
    [{ ITSM_RULES_FROM: 'newest' }, /ITSM_RULES_FROM must be oldest or latest, got "newest"/],
    [
      { ITSM_RULES_PAGE_SIZE: '1001' },
      /ITSM_RULES_PAGE_SIZE must be a whole number from 1 to 1000/,
    ],
    [
      { ITSM_RULES_PAGES_PER_MESSAGE: 'ten' },
      /ITSM_RULES_PAGES_PER_MESSAGE must be a whole number/,
    ],
    [
      { ITSM_RULES_OBJECT_CONCURRENCY: '65' },
      /ITSM_RULES_OBJECT_CONCURRENCY must be a whole number from 1 to 64, got "65"/,
    ],
    [{ ITSM_RULES_RETENTION_DAYS: '0' }, /ITSM_RULES_RETENTION_DAYS must be a whole number from 1/],
    [
      { ITSM_CONSOLE_SESSION_HOURS: '721' },
      /ITSM_CONSOLE_SESSION_HOURS must be a whole number from 1 to 720/,
    ],
    [
      { ITSM_HTTP_ALLOW: 'pager.example.com, x.com/path' },
      /ITSM_HTTP_ALLOW: "x\.com\/path" is not a host: give host or host:port/,
    ],
    [{ DB: undefined }, /the D1 binding DB is missing/],
    [{ QUEUE: undefined }, /the Queue binding QUEUE is missing/],
  ])('refuses %o with a message naming it', (overrides, message) => {
    expect(() => readWorkerConfig({ ...workerEnv, ...overrides } as WorkerEnv)).toThrow(message);
  });

  it('reads ITSM_HTTP_ALLOW as comma-separated hosts', () => {
    const env = { ...workerEnv, ITSM_HTTP_ALLOW: ' pager.example.com, *.hooks.example.com:443 ,' };
    expect(readWorkerConfig(env).httpAllow).toEqual([
      'pager.example.com',
      '*.hooks.example.com:443',
    ]);
  });

  it('takes numbers given as TOML numbers', () => {
    const env = { ...workerEnv, ITSM_RULES_PAGE_SIZE: 50 } as WorkerEnv;
    expect(readWorkerConfig(env).pageSize).toBe(50);
  });
});

describe('the backoff of a failed drain', () => {
  it.each([
    [1, 0, 1],
    [1, 0.999, 1],
    [2, 0, 1],
    [3, 0.5, 3],
    [7, 0, 30],
    [7, 0.999, 60],
    [30, 0.5, 45],
  ])('after attempt %i with random %f waits %i s', (attempts, random, seconds) => {
    expect(retryDelaySeconds(attempts, { random: () => random })).toBe(seconds);
  });
});

describe('the queue messages of the Worker', () => {
  it.each([
    [{ account: 3 }, { account: 3 }],
    [
      { tick: '2026-05-04T10:15:00.000Z', rules: ['a'] },
      { tick: '2026-05-04T10:15:00.000Z', rules: ['a'] },
    ],
    [{ account: 0 }, null],
    [{ account: 1.5 }, null],
    [{ account: '3' }, null],
    [{ tick: 'yesterday', rules: [] }, null],
    [{ tick: '2026-05-04T10:15:00Z', rules: [1] }, null],
    [[{ account: 3 }], null],
    ['account=3', null],
    [null, null],
  ])('reads %o as %o', (body, expected) => {
    expect(parseWorkerMessage(body)).toEqual(expected);
  });
});

describe('a bundled rule set with a problem', () => {
  it('is refused with every problem, formatted as itsm-rules check prints it', () => {
    const sources = [
      {
        path: 'rules/incident/page.yaml',
        text: 'on:\n  type: incident\nwhen: {"==": [{var: object.priority}, urgent]}\nthen:\n  - escalate: {levels: two}\n',
      },
    ];
    let error: unknown;
    try {
      createWorker({ rules: sources });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(WorkerRulesError);
    const problems = (error as WorkerRulesError).problems;
    expect(problems).toEqual([
      expect.stringMatching(
        /^rules\/incident\/page\.yaml:3 \/when\/==\/1: priority is one of low, medium, high, critical, so it is never "urgent"$/,
      ),
      expect.stringMatching(
        /^rules\/incident\/page\.yaml:5 \/then\/0\/escalate\/levels: expected a whole number from 1 to 3, got "two"$/,
      ),
    ]);
  });
});

describe('the secrets the bundled rules use', () => {
  const sources = [
    {
      path: 'rules/incident/page.yaml',
      text: 'on: {type: incident}\nthen:\n  - http:\n      url: https://pager.example.com/alerts\n      headers: {Authorization: {cat: ["Bearer ", {secret: PAGER_TOKEN}]}}\n',
    },
  ];
  const healthz = () => new Request('http://engine.test/healthz');

  it('refuses to run while ITSM_SECRET_<NAME> is not bound, naming the rule and the command', async () => {
    const logs: string[] = [];
    const worker = createWorker({ rules: sources, log: (line) => logs.push(line) });
    // The Worker's own key is bound; a rule still cannot read it under another name.
    const env = { ...workerEnv, PAGER_TOKEN: 'not-the-binding' } as WorkerEnv;
    const response = await worker.fetch(healthz(), env, createExecutionContext());
    expect(response.status).toBe(500);
    const body = (await response.json()) as { message: string };
    expect(body.message).toBe(
      'the Worker is not configured: page (rules/incident/page.yaml) uses the secret PAGER_TOKEN, which is not set; set it with `npx wrangler secret put ITSM_SECRET_PAGER_TOKEN`',
    );
    expect(logs.join('\n')).toContain('ITSM_SECRET_PAGER_TOKEN');
  });

  it('runs once the secret is bound', async () => {
    const worker = createWorker({ rules: sources });
    const env = { ...workerEnv, ITSM_SECRET_PAGER_TOKEN: 'token-value-2291' } as WorkerEnv;
    const response = await worker.fetch(healthz(), env, createExecutionContext());
    expect(response.status).toBe(200);
    expect(await response.text()).not.toContain('token-value-2291');
  });
});
