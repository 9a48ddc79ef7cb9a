// `itsm-rules replay`: the impact preview of a candidate rule set on past events, beside the
// rules in force (src/engine/replay.ts). Events come from the ITSM API (its retained events, read
// only: the client makes GET requests and nothing else) or from a file of events exported as
// JSON lines. Prints a summary table and, per rule, samples of new matches, lost matches and
// changed calls; `--format json` prints the report as data.
import { parseDuration } from '../engine/duration.js';
import { createLookupResolver } from '../engine/lookup.js';
import { showBody } from '../engine/plan.js';
import {
  type ReplayReport,
  type ReplaySample,
  replayEvents,
  retainedEvents,
} from '../engine/replay.js';
import { describeBadAccountId, distinctAccountIds, parseAccountId } from '../itsm/account-id.js';
import { createItsmClient } from '../itsm/client.js';
import { eventSchema, type ItsmEvent } from '../itsm/schemas.js';
import { DEFAULT_ENGINE_USER } from '../webhook/drain.js';
import { type Command, type FlagValues, list, UsageError } from './command.js';
import { loadFolder } from './rule-commands.js';
import { readTextFile } from './text-file.js';

export const replayCommand: Command = {
  name: 'replay',
  summary:
    'impact preview: what a candidate rule set would have done with past events, beside the rules in force (writes nothing)',
  flags: [
    {
      name: 'rules',
      type: 'string',
      placeholder: 'PATH',
      description: 'the candidate rules: a folder of rule files, or one rule file (required)',
    },
    {
      name: 'baseline',
      env: 'ITSM_RULES_DIR',
      type: 'string',
      default: './rules',
      placeholder: 'PATH',
      description: 'the rules to compare with: the rules in force (a folder, or one rule file)',
    },
    {
      name: 'since',
      type: 'string',
      default: '7d',
      placeholder: 'DURATION',
      description:
        'replay the events of this last stretch of time: 30m, 12h, 7d; older ones are not read',
    },
    {
      name: 'events',
      type: 'string',
      placeholder: 'FILE',
      description:
        'read the events from an export instead of the API: one event per line, as GET .../events returns them',
    },
    {
      name: 'api-url',
      env: 'ITSM_API_URL',
      type: 'string',
      placeholder: 'URL',
      description: 'the ITSM API whose retained events are replayed (read only)',
    },
    {
      name: 'api-key',
      env: 'ITSM_API_KEY',
      type: 'string',
      placeholder: 'KEY',
      description: 'application API key of --api-url',
    },
    {
      name: 'account',
      type: 'string',
      multiple: true,
      placeholder: 'ID',
      description:
        'replay this account (repeatable): required with --api-url (the API does not list accounts); with --events, a filter (default every account)',
    },
    {
      name: 'as-user',
      env: 'ITSM_RULES_AS_USER',
      type: 'string',
      default: DEFAULT_ENGINE_USER,
      placeholder: 'USER',
      description: "the engine's user: its events are the engine's own writes, not replayed",
    },
    {
      name: 'format',
      type: 'string',
      default: 'text',
      placeholder: 'FORMAT',
      description:
        'text (a summary table, then samples of each difference) or json: {events, evaluated, errors, rules: [{ruleId, in, newMatches, lostMatches, changedCalls, unchanged, samples}]}',
    },
  ],
  async run(values) {
    const options = parseOptions(values);
    const candidate = loadFolder(options.rules, { file: true });
    if (!candidate) return 1;
    const baseline = loadFolder(options.baseline, { file: true, flag: 'baseline' });
    if (!baseline) return 1;
    const from = Date.now() - options.sinceMs;
    const client =
      options.apiUrl === undefined
        ? null
        : createItsmClient({
            baseUrl: options.apiUrl,
            auth: { apiKey: options.apiKey ?? '' },
            userAgent: 'itsm-rules-replay/0.1',
          });
    const events =
      client === null
        ? fileEvents(options.events as string, options.accounts, from)
        : retainedEvents(client, options.accounts ?? [], from);
    // SQLite and the migrations are loaded by this command only, not by `check` or `--help`.
    const [{ createSqliteEngineStore }, { loadMigrations }] = await Promise.all([
      import('../storage/sqlite-engine.js'),
      import('./node.js'),
    ]);
    const migrations = loadMigrations();
    const stores = {
      candidate: createSqliteEngineStore({ path: ':memory:', migrations }),
      baseline: createSqliteEngineStore({ path: ':memory:', migrations }),
    };
    let report: ReplayReport;
    try {
      report = await replayEvents(events, {
        candidate: candidate.ruleSet,
        baseline: baseline.ruleSet,
        stores,
        engineUser: options.asUser,
        ...(client && { lookup: createLookupResolver(client) }),
      });
    } finally {
      await stores.candidate.close();
      await stores.baseline.close();
    }
    console.log(
      options.format === 'json'
        ? JSON.stringify(
            {
              candidate: options.rules,
              baseline: options.baseline,
              since: options.since,
              ...report,
            },
            null,
            2,
          )
        : renderReport(report, options),
    );
    return 0;
  },
};

interface ReplayOptions {
  rules: string;
  baseline: string;
  since: string;
  sinceMs: number;
  events?: string;
  apiUrl?: string;
  apiKey?: string;
  accounts: number[] | null;
  asUser: string;
  format: 'text' | 'json';
}

function parseOptions(values: FlagValues): ReplayOptions {
  const rules = values.rules as string | undefined;
  if (!rules) throw new UsageError('--rules PATH is required: the candidate rules to preview');
  const since = String(values.since);
  const sinceMs = parseDuration(since);
  if (sinceMs === null) {
    throw new UsageError(
      `--since must be a duration such as 30m, 12h or 7d, got ${JSON.stringify(since)}`,
    );
  }
  const format = String(values.format);
  if (format !== 'text' && format !== 'json') {
    throw new UsageError(`--format must be text or json, got ${JSON.stringify(format)}`);
  }
  const events = values.events as string | undefined;
  const apiUrl = values['api-url'] as string | undefined;
  if (events !== undefined && apiUrl !== undefined) {
    throw new UsageError(
      "--api-url and --events are two sources of the events to replay: give one, not both (--api-url, or ITSM_API_URL, reads the API's retained events; --events FILE reads an export)",
    );
  }
  if (events === undefined && apiUrl === undefined) {
    throw new UsageError(
      "give the events to replay: --api-url URL (with --api-key and --account) for the API's retained events, or --events FILE for an export",
    );
  }
  const accounts = distinctAccountIds(
    list(values.account).map((text) => {
      const id = parseAccountId(text);
      if (id === null) throw new UsageError(describeBadAccountId('--account', text));
      return id;
    }),
  );
  if (apiUrl !== undefined && accounts.length === 0) {
    throw new UsageError(
      '--account ID is required with --api-url (repeatable): the API does not list accounts',
    );
  }
  if (apiUrl !== undefined && !values['api-key']) {
    throw new UsageError('--api-key is required with --api-url');
  }
  return {
    rules,
    baseline: String(values.baseline),
    since,
    sinceMs,
    ...(events !== undefined && { events }),
    ...(apiUrl !== undefined && { apiUrl }),
    ...(typeof values['api-key'] === 'string' && { apiKey: values['api-key'] }),
    accounts: accounts.length === 0 ? null : accounts,
    asUser: String(values['as-user']),
    format,
  };
}

/** The events of an export (one JSON event per line), checked line by line. */
function* fileEvents(path: string, accounts: number[] | null, from: number): Generator<ItsmEvent> {
  let text: string;
  try {
    text = readTextFile(path);
  } catch (error) {
    throw new UsageError(`--events ${path} cannot be read: ${(error as Error).message}`);
  }
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') continue;
    let data: unknown;
    try {
      data = JSON.parse(line);
    } catch (error) {
      throw new UsageError(
        `--events ${path}:${index + 1}: not valid JSON (${(error as Error).message}); the file holds one event per line`,
      );
    }
    const parsed = eventSchema.safeParse(data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new UsageError(
        `--events ${path}:${index + 1}: not an event as GET .../events returns it (${issue ? `${issue.path.join('.') || 'the line'}: ${issue.message}` : 'invalid'})`,
      );
    }
    const event = parsed.data;
    if (accounts !== null && !accounts.includes(event.account)) continue;
    if (Date.parse(event.modified) >= from) yield event;
  }
}

function renderReport(report: ReplayReport, options: ReplayOptions): string {
  const lines = [
    `replay of ${report.events} event${report.events === 1 ? '' : 's'} of the last ${options.since} (${report.evaluated} evaluated): ${options.rules} against ${options.baseline}`,
    '',
  ];
  const header = ['rule', 'in', 'new matches', 'lost matches', 'changed calls', 'unchanged'];
  const rows = report.rules.map((rule) => [
    rule.ruleId,
    rule.in,
    String(rule.newMatches),
    String(rule.lostMatches),
    String(rule.changedCalls),
    String(rule.unchanged),
  ]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const format = (row: string[]) =>
    row
      .map((cell, column) =>
        column < 2 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join('  ')
      .trimEnd();
  lines.push(format(header), format(widths.map((width) => '-'.repeat(width))));
  for (const row of rows) lines.push(format(row));
  const differing = report.rules.filter(
    (rule) => rule.newMatches + rule.lostMatches + rule.changedCalls > 0,
  );
  for (const rule of differing) {
    lines.push('', `${rule.ruleId}:`);
    for (const [kind, title] of [
      ['newMatches', 'new match'],
      ['lostMatches', 'lost match'],
      ['changedCalls', 'changed calls'],
    ] as const) {
      for (const sample of rule.samples[kind]) lines.push(...renderSample(title, sample));
    }
  }
  if (differing.length === 0)
    lines.push('', 'no difference: the candidate rules act as the baseline on these events.');
  if (report.errors.length > 0) {
    lines.push('', 'not evaluated:');
    for (const error of report.errors) lines.push(`  ${error}`);
  }
  lines.push('', 'replay: nothing was written.');
  return lines.join('\n');
}

function renderSample(title: string, sample: ReplaySample): string[] {
  const lines = [
    `  ${title}: ${sample.eventType} of ${sample.objectType} ${sample.objectId} in account ${sample.account} at ${sample.at} (event ${sample.eventId})`,
  ];
  for (const [side, calls] of [
    ['baseline', sample.baselineCalls],
    ['candidate', sample.candidateCalls],
  ] as const) {
    if (!calls) continue;
    lines.push(`    ${side}:${calls.length === 0 ? ' no call' : ''}`);
    for (const call of calls) lines.push(`      ${describeCall(call)}`);
  }
  return lines;
}

/** A call as the samples show it, one line: what it does, not where in the plan it came from. */
function describeCall(call: unknown): string {
  const planned = call as {
    kind?: string;
    method?: string;
    path?: string;
    query?: Record<string, string>;
    url?: string;
    body?: unknown;
    message?: string;
  };
  const body =
    planned.body === undefined || planned.body === null ? '' : ` ${showBody(planned.body)}`;
  switch (planned.kind) {
    case 'api': {
      const query = planned.query ? `?${new URLSearchParams(planned.query).toString()}` : '';
      return `${planned.method} ${planned.path}${query}${body}`;
    }
    case 'http':
      return `${planned.method?.toUpperCase()} ${planned.url}${body}`;
    case 'log':
      return `log: ${planned.message}`;
    default:
      return JSON.stringify(call);
  }
}
