// `itsm-rules replay`, the impact preview, as a user runs it: the CLI reads the retained events of
// an embedded ITSM API on 127.0.0.1 (or an export of them) and compares a candidate rule set with
// the baseline, per rule. The API refuses every write for the whole test (the fault injector
// answers 500 to each POST, PATCH, PUT and DELETE): the replay succeeds, and no write reached it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ItsmEvent } from '../../src/itsm/schemas.js';
import { allEvents, type EngineHarness, startEngineHarness } from '../helpers/engine.js';
import { TEST_API_KEY } from '../helpers/itsm.js';
import { ROOT, runScript } from '../helpers/run-script.js';

const BIN = join(ROOT, 'bin/itsm-rules.js');
const TIMEOUT = 60_000;
const CANDIDATE = 'test/fixtures/rule-suites/replay/candidate';
const BASELINE = 'test/fixtures/rule-suites/replay/baseline';
const WRITES = ['POST', 'PATCH', 'PUT', 'DELETE'];
const REFUSALS = 1_000;

describe('itsm-rules replay', () => {
  let harness: EngineHarness;
  let events: ItsmEvent[];
  const ids: Record<string, string> = {};
  const dir = mkdtempSync(join(tmpdir(), 'itsm-replay-'));

  beforeAll(async () => {
    harness = await startEngineHarness();
    const create = async (name: string, body: Record<string, unknown>) => {
      const response = await harness.server.call('POST', '/v1/accounts/1/itsm/incidents', { body });
      expect(response.status, response.text).toBe(201);
      ids[name] = response.json.id;
    };
    await create('major', { impact: 'high', urgency: 'high', priority: 'medium' });
    await create('impactOnly', { impact: 'high', urgency: 'low', priority: 'low' });
    await create('printer', { category: 'printer', urgency: 'medium' });
    await create('minor', { impact: 'low', urgency: 'low' });
    events = await allEvents(harness.client);
    // From here on the API refuses every write.
    for (const method of WRITES) {
      harness.faults.inject({ status: 500, method, times: REFUSALS });
    }
  });

  afterAll(async () => {
    await harness?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const replay = (args: string[]) =>
    runScript(BIN, ['replay', '--rules', CANDIDATE, '--baseline', BASELINE, ...args]);
  /** `replay` reading account 1's events from the harness's API. */
  const replayOverApi = (args: string[]) =>
    replay([
      ...['--api-url', `${harness.server.url}/v1`, '--api-key', TEST_API_KEY, '--account', '1'],
      ...args,
    ]);

  it(
    'reports per rule the new matches, lost matches and changed calls, and writes nothing',
    async () => {
      const result = await replayOverApi(['--format', 'json']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout);
      expect(report).toMatchObject({ events: 4, evaluated: 4, errors: [] });
      const byRule = Object.fromEntries(
        report.rules.map((rule: { ruleId: string }) => [rule.ruleId, rule]),
      );
      expect(byRule['escalate-major']).toMatchObject({
        in: 'both',
        newMatches: 1,
        lostMatches: 0,
        changedCalls: 1,
        unchanged: 0,
        samples: {
          newMatches: [
            {
              objectId: ids.impactOnly,
              candidateCalls: [{ method: 'PATCH', body: { priority: 'medium', escalation: 1 } }],
            },
          ],
          changedCalls: [
            {
              objectId: ids.major,
              baselineCalls: [{ body: { priority: 'critical', escalation: 1 } }],
              candidateCalls: [{ body: { priority: 'high', escalation: 1 } }],
            },
          ],
        },
      });
      expect(byRule['quiet-printers']).toMatchObject({
        in: 'baseline',
        newMatches: 0,
        lostMatches: 1,
        changedCalls: 0,
        samples: { lostMatches: [{ objectId: ids.printer, baselineCalls: [{ method: 'PATCH' }] }] },
      });
      // Not one write was tried (each would have used up one refusal), and the log is as it was.
      expect(harness.faults.pending()).toBe(WRITES.length * REFUSALS);
      expect(await allEvents(harness.client)).toEqual(events);
    },
    TIMEOUT,
  );

  it(
    'prints a summary table and samples as text',
    async () => {
      const result = await replayOverApi([]);
      expect(result.code).toBe(0);
      const lines = result.stdout.split('\n');
      expect(lines.slice(0, 6)).toEqual([
        `replay of 4 events of the last 7d (4 evaluated): ${CANDIDATE} against ${BASELINE}`,
        '',
        'rule            in        new matches  lost matches  changed calls  unchanged',
        '--------------  --------  -----------  ------------  -------------  ---------',
        'escalate-major  both                1             0              1          0',
        'quiet-printers  baseline            0             1              0          0',
      ]);
      expect(result.stdout).toContain(
        `  lost match: add of incident ${ids.printer} in account 1 at `,
      );
      // Each call on a line of its own, as it would be made.
      expect(result.stdout).toContain(
        `    baseline:\n      PATCH accounts/1/itsm/incidents/${ids.printer} {"urgency":"low"}\n`,
      );
      expect(result.stdout).toContain(
        [
          '    baseline:',
          `      PATCH accounts/1/itsm/incidents/${ids.major} {"priority":"critical","escalation":1}`,
          '    candidate:',
          `      PATCH accounts/1/itsm/incidents/${ids.major} {"priority":"high","escalation":1}`,
        ].join('\n'),
      );
      expect(lines.at(-2)).toBe('replay: nothing was written.');
      expect(harness.faults.pending()).toBe(WRITES.length * REFUSALS);
    },
    TIMEOUT,
  );

  it(
    'reads an account given twice once',
    async () => {
      const result = await replayOverApi(['--account', '1', '--format', 'json']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ events: 4, evaluated: 4, errors: [] });
    },
    TIMEOUT,
  );

  it(
    'replays an export of the events (JSON lines) without any API',
    async () => {
      const file = join(dir, 'events.jsonl');
      writeFileSync(file, `${events.map((event) => JSON.stringify(event)).join('\n')}\n`);
      const result = await replay(['--events', file, '--format', 'json']);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const report = JSON.parse(result.stdout);
      expect(
        report.rules.map((rule: Record<string, unknown>) => [
          rule.ruleId,
          rule.newMatches,
          rule.lostMatches,
          rule.changedCalls,
        ]),
      ).toEqual([
        ['escalate-major', 1, 0, 1],
        ['quiet-printers', 0, 1, 0],
      ]);
    },
    TIMEOUT,
  );

  it(
    'leaves out the events older than --since',
    async () => {
      const file = join(dir, 'aged.jsonl');
      // The printer's event, ten days old: outside the default 7d, inside 30d.
      const aged = events.map((event) =>
        event.metadata.id === ids.printer
          ? { ...event, modified: new Date(Date.now() - 10 * 86_400_000).toISOString() }
          : event,
      );
      writeFileSync(file, `${aged.map((event) => JSON.stringify(event)).join('\n')}\n`);
      const lost = (report: { rules: { ruleId: string; lostMatches: number }[] }) =>
        report.rules.find((rule) => rule.ruleId === 'quiet-printers')?.lostMatches;
      const week = JSON.parse((await replay(['--events', file, '--format', 'json'])).stdout);
      expect(week).toMatchObject({ since: '7d', events: 3, evaluated: 3 });
      expect(lost(week)).toBe(0);
      const month = JSON.parse(
        (await replay(['--events', file, '--since', '30d', '--format', 'json'])).stdout,
      );
      expect(month).toMatchObject({ since: '30d', events: 4, evaluated: 4 });
      expect(lost(month)).toBe(1);
    },
    TIMEOUT,
  );

  it.each<[string, string, string]>([
    ['a line that is not JSON', 'not json\n', 'broken.jsonl:1: not valid JSON'],
    [
      'a line that is not an event',
      '{"id": "1"}\n',
      'broken.jsonl:1: not an event as GET .../events returns it',
    ],
  ])(
    'refuses an export with %s, naming the file and line',
    async (_name, text, message) => {
      const file = join(dir, 'broken.jsonl');
      writeFileSync(file, text);
      const result = await replay(['--events', file]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
    },
    TIMEOUT,
  );

  it.each<[string, string[], string]>([
    [
      'a --since that is not a duration',
      ['--since', 'a week'],
      '--since must be a duration such as 30m, 12h or 7d, got "a week"',
    ],
    ['an unknown --format', ['--format', 'xml'], '--format must be text or json, got "xml"'],
    [
      '--api-url without --account',
      ['--api-url', 'http://127.0.0.1:9/v1', '--api-key', 'k'],
      '--account ID is required with --api-url (repeatable): the API does not list accounts',
    ],
  ])(
    'exits 2 for %s, saying what it takes',
    async (_name, args, message) => {
      const file = join(dir, 'usage.jsonl');
      writeFileSync(file, '');
      const result = await replay(args.includes('--api-url') ? args : ['--events', file, ...args]);
      expect(result.code).toBe(2);
      expect(result.stderr.split('\n')[0]).toBe(`itsm-rules replay: ${message}`);
    },
    TIMEOUT,
  );

  it(
    'refuses --api-url (or ITSM_API_URL) with --events: not both',
    async () => {
      const file = join(dir, 'both.jsonl');
      writeFileSync(file, '');
      const message =
        "itsm-rules replay: --api-url and --events are two sources of the events to replay: give one, not both (--api-url, or ITSM_API_URL, reads the API's retained events; --events FILE reads an export)";
      const [flag, env] = await Promise.all([
        replay(['--events', file, '--api-url', 'http://127.0.0.1:9/v1', '--api-key', 'k']),
        runScript(BIN, ['replay', '--rules', CANDIDATE, '--baseline', BASELINE, '--events', file], {
          env: { ITSM_API_URL: 'http://127.0.0.1:9/v1' },
        }),
      ]);
      for (const result of [flag, env]) {
        expect(result.code).toBe(2);
        expect(result.stderr.split('\n')[0]).toBe(message);
      }
    },
    TIMEOUT,
  );

  it(
    'names --baseline when the rules to compare with (default ./rules) are missing',
    async () => {
      const file = join(dir, 'baseline.jsonl');
      writeFileSync(file, '');
      // A folder with no rules/ in it: the default baseline is missing, the candidate is not.
      const result = await runScript(
        BIN,
        ['replay', '--rules', join(ROOT, CANDIDATE), '--events', file],
        {
          cwd: dir,
        },
      );
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toBe(
        'itsm-rules replay: the rules path ./rules does not exist or cannot be read; point --baseline at a rule file or the folder of rule files\n',
      );
    },
    TIMEOUT,
  );

  it(
    'asks for the events to replay when neither --api-url nor --events is given',
    async () => {
      const result = await replay([]);
      expect(result.code).toBe(2);
      expect(result.stderr.split('\n')[0]).toBe(
        "itsm-rules replay: give the events to replay: --api-url URL (with --api-key and --account) for the API's retained events, or --events FILE for an export",
      );
    },
    TIMEOUT,
  );
});
