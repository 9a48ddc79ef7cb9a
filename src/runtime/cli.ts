// The `itsm-rules` command line. Each command declares its flags once (with environment-variable
// twins and defaults); parsing, validation and `--help` all come from that table.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { describeBadAccountId, parseAccountId } from '../itsm/account-id.js';
import type { BearerToken } from '../server/context.js';
import { DEFAULT_EVENT_RETENTION, DEFAULT_MAX_BODY_BYTES } from '../server/limits.js';
import { DEFAULT_MAX_PAGE_BYTES } from '../server/page-budget.js';
import {
  type Command,
  type FlagSpec,
  type FlagValues,
  isLoopback,
  list,
  positiveInt,
  UsageError,
} from './command.js';
import { letYoungGenerationGrow } from './heap.js';
import type { SeedUser } from './node.js';
import { replayCommand } from './replay-command.js';
import { checkCommand, schemaCommand, testCommand } from './rule-commands.js';
import {
  DEV_API_KEY,
  DEV_APP_ID,
  faultsFlag,
  faultsFromFlag,
  serveCommand,
  snOAuthClientFlag,
  snUserFlag,
  tableApiFromFlags,
} from './serve-command.js';
import { serviceNowFlags, serviceNowFromFlags } from './servicenow-flags.js';
import { readTextFile } from './text-file.js';

const itsmServerFlags: FlagSpec[] = [
  {
    name: 'port',
    env: 'ITSM_SERVER_PORT',
    type: 'string',
    default: '8788',
    placeholder: 'N',
    description: 'port to listen on (0: any free port)',
  },
  {
    name: 'host',
    env: 'ITSM_SERVER_HOST',
    type: 'string',
    default: '127.0.0.1',
    placeholder: 'ADDR',
    description: 'address to listen on',
  },
  {
    name: 'db',
    env: 'ITSM_SERVER_DB',
    type: 'string',
    default: './data/itsm.db',
    placeholder: 'PATH',
    description: 'SQLite database file, or :memory:',
  },
  {
    name: 'api-key',
    env: 'ITSM_API_KEY',
    type: 'string',
    placeholder: 'KEY',
    description: `application API key (Authorization: APIKey KEY; also signs webhooks). Default on loopback: ${DEV_API_KEY}`,
  },
  {
    name: 'app-id',
    env: 'ITSM_APP_ID',
    type: 'string',
    placeholder: 'ID',
    description: `application id (answered in webhook handshakes). Default: ${DEV_APP_ID}`,
  },
  {
    name: 'webhook',
    env: 'ITSM_WEBHOOKS',
    type: 'string',
    multiple: true,
    placeholder: 'URL',
    description:
      'register this webhook at start, after the handshake (repeatable; env: comma-separated)',
  },
  {
    name: 'token',
    env: 'ITSM_TOKENS',
    type: 'string',
    multiple: true,
    placeholder: 'TOKEN:ACCOUNT[:USER]',
    description:
      'accept Authorization: Bearer TOKEN for one account (repeatable; env: comma-separated)',
  },
  {
    name: 'users',
    env: 'ITSM_USERS_FILE',
    type: 'string',
    placeholder: 'FILE',
    description:
      'JSON array of team users to provision: {account, first_name, last_name, email, sys_id?}',
  },
  {
    name: 'public-url',
    env: 'ITSM_PUBLIC_URL',
    type: 'string',
    placeholder: 'URL',
    description: 'base URL used in href (default: the request origin)',
  },
  {
    name: 'max-body',
    env: 'ITSM_MAX_BODY',
    type: 'string',
    default: String(DEFAULT_MAX_BODY_BYTES),
    placeholder: 'BYTES',
    description: 'largest request body; larger ones get 413',
  },
  {
    name: 'max-page-bytes',
    env: 'ITSM_MAX_PAGE_BYTES',
    type: 'string',
    default: String(DEFAULT_MAX_PAGE_BYTES),
    placeholder: 'BYTES',
    description:
      'largest JSON of an events page or a list page; a page stops before the item that would pass it (always at least one), and the next page goes on from there',
  },
  {
    name: 'event-retention',
    env: 'ITSM_EVENT_RETENTION',
    type: 'string',
    default: String(DEFAULT_EVENT_RETENTION),
    placeholder: 'N',
    description: 'events kept per account; older cursors expire',
  },
  faultsFlag,
  snUserFlag,
  snOAuthClientFlag,
  ...serviceNowFlags,
];

function parseTokens(specs: string[]): Record<string, BearerToken> {
  const tokens: Record<string, BearerToken> = {};
  for (const spec of specs) {
    const [token, accountText, userId] = spec.split(':');
    const account = parseAccountId(accountText);
    if (!token || account === null) {
      throw new UsageError(
        `--token must be TOKEN:ACCOUNT[:USER_ID], got ${JSON.stringify(spec)}${
          token ? `; ${describeBadAccountId('ACCOUNT', accountText)}` : ''
        }`,
      );
    }
    tokens[token] = { account, ...(userId && { userId }) };
  }
  return tokens;
}

function readUsersFile(path: string): SeedUser[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readTextFile(path));
  } catch (error) {
    throw new UsageError(`--users ${path}: ${(error as Error).message}`);
  }
  if (
    !Array.isArray(parsed) ||
    !parsed.every((u) => u && typeof u === 'object' && Number.isInteger(u.account))
  ) {
    throw new UsageError(
      `--users ${path}: expected a JSON array of {account, first_name, last_name, email}`,
    );
  }
  return parsed as SeedUser[];
}

const itsmServerCommand: Command = {
  name: 'itsm-server',
  summary: 'serve the embedded ITSM API (the Kloudless-style API of docs/api.md) alone',
  flags: itsmServerFlags,
  async run(values) {
    const host = String(values.host);
    if (!values['api-key'] && !isLoopback(host)) {
      throw new UsageError(`--api-key is required when listening on ${host} (beyond loopback)`);
    }
    const apiKey = (values['api-key'] as string | undefined) ?? DEV_API_KEY;
    const appId = (values['app-id'] as string | undefined) ?? DEV_APP_ID;
    // The server, SQLite and the HTTP stack load only for the commands that serve (`check` and
    // `--help` start without them).
    const [{ validateWebhookUrl }, { startItsmServer }] = await Promise.all([
      import('../server/webhooks.js'),
      import('./node.js'),
    ]);
    const webhooks = list(values.webhook);
    for (const url of webhooks) {
      try {
        validateWebhookUrl(url);
      } catch (error) {
        throw new UsageError(`--webhook: ${(error as Error).message}`);
      }
    }
    const usersFile = values.users as string | undefined;
    const faults = faultsFromFlag(values);
    const servicenow = serviceNowFromFlags(values);
    const log = (line: string) => console.error(line);
    const running = await startItsmServer({
      port: positiveInt('port', String(values.port), 0, 65_535),
      host,
      db: String(values.db),
      apiKey,
      appId,
      tokens: parseTokens(list(values.token)),
      webhooks,
      ...(usersFile && { users: readUsersFile(usersFile) }),
      ...(values['public-url'] ? { publicUrl: String(values['public-url']) } : {}),
      maxBodyBytes: positiveInt('max-body', String(values['max-body'])),
      maxPageBytes: positiveInt('max-page-bytes', String(values['max-page-bytes']), 1024),
      eventRetention: positiveInt('event-retention', String(values['event-retention'])),
      ...(faults && { faults }),
      tableApi: tableApiFromFlags(values),
      ...(servicenow && { servicenow }),
      log,
    });
    letYoungGenerationGrow();
    console.log(`itsm-api listening on ${running.url}/v1 (db ${values.db}, app ${appId})`);
    if (!values['api-key']) {
      console.log(
        `itsm-api: no --api-key given; using the development key "${apiKey}" (loopback only)`,
      );
    }
    await waitForSignal();
    console.log('itsm-api: shutting down');
    await running.close();
    return 0;
  },
};

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

export const COMMANDS: Command[] = [
  serveCommand,
  itsmServerCommand,
  checkCommand,
  testCommand,
  replayCommand,
  schemaCommand,
];

function commandHelp(command: Command): string {
  const positional = command.positional ? ` [${command.positional.placeholder}]` : '';
  const lines = [
    `usage: itsm-rules ${command.name} [flags]${positional}`,
    '',
    command.summary,
    '',
    'flags:',
  ];
  for (const flag of command.flags) {
    const left = `  --${flag.name}${flag.placeholder ? ` ${flag.placeholder}` : ''}`;
    const extras = [
      flag.env && `env ${flag.env}`,
      flag.deprecatedEnv && `formerly ${flag.deprecatedEnv}`,
      flag.default !== undefined && `default ${flag.default}`,
    ]
      .filter(Boolean)
      .join('; ');
    // A long description goes on under the first line, which keeps the env twin and default.
    const [first, ...more] = flag.description.split('\n');
    lines.push(`${left.padEnd(34)} ${first}${extras ? ` (${extras})` : ''}`);
    for (const line of more) lines.push(`${' '.repeat(35)}${line}`);
  }
  lines.push(`${'  --help'.padEnd(34)} show this help`);
  return lines.join('\n');
}

function mainHelp(): string {
  return [
    'usage: itsm-rules <command> [flags]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(14)} ${c.summary}`),
    '',
    'Run `itsm-rules <command> --help` for its flags. Every flag of serve and itsm-server has an environment-variable twin, named in --help.',
    '`itsm-rules --version` prints the version.',
  ].join('\n');
}

/** `itsm-rules <version>`, from package.json. */
function versionLine(): string {
  const manifest = JSON.parse(
    readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
  ) as { version: string };
  return `itsm-rules ${manifest.version}`;
}

/** The one line after a usage error: the whole help would bury the error. */
const helpHint = (command?: Command) =>
  `Run 'itsm-rules${command ? ` ${command.name}` : ''} --help' for usage.`;

/** Flag values from argv, then the environment, then defaults. */
function resolveFlags(
  command: Command,
  argv: string[],
  env: NodeJS.ProcessEnv,
): FlagValues | 'help' {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    help: { type: 'boolean' },
  };
  for (const flag of command.flags)
    options[flag.name] = { type: flag.type, ...(flag.multiple && { multiple: true }) };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options,
      allowPositionals: command.positional !== undefined,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) return 'help';
  const positionals = parsed.positionals;
  if (command.positional && positionals.length > 0) {
    const { flag, placeholder } = command.positional;
    if (positionals.length > 1) {
      throw new UsageError(
        `one ${placeholder} at most, got ${positionals.length}: ${positionals.map((p) => JSON.stringify(p)).join(' ')}`,
      );
    }
    if (parsed.values[flag] !== undefined) {
      throw new UsageError(
        `give the ${placeholder} either as --${flag} or on its own, not both (got --${flag} ${JSON.stringify(parsed.values[flag])} and ${JSON.stringify(positionals[0])})`,
      );
    }
    parsed.values[flag] = positionals[0] as string;
  }
  const values: FlagValues = {};
  for (const flag of command.flags) {
    let value = parsed.values[flag.name] as FlagValues[string];
    const deprecated = flag.deprecatedEnv ? env[flag.deprecatedEnv] : undefined;
    if (deprecated !== undefined && deprecated !== '') {
      console.error(`${flag.deprecatedEnv} is deprecated; use ${flag.env}`);
    }
    let fromEnv = flag.env ? env[flag.env] : undefined;
    if (fromEnv === undefined || fromEnv === '') fromEnv = deprecated;
    if (value === undefined && fromEnv !== undefined && fromEnv !== '') {
      value = flag.multiple
        ? fromEnv
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : flag.type === 'boolean'
          ? fromEnv === 'true' || fromEnv === '1'
          : fromEnv;
    }
    values[flag.name] = value ?? flag.default;
  }
  return values;
}

export { UsageError };

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(mainHelp());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V') {
    console.log(versionLine());
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`itsm-rules: unknown command ${JSON.stringify(name)}\n${helpHint()}`);
    return 2;
  }
  try {
    const values = resolveFlags(command, rest, env);
    if (values === 'help') {
      console.log(commandHelp(command));
      return 0;
    }
    return await command.run(values);
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`itsm-rules ${command.name}: ${error.message}\n${helpHint(command)}`);
      return 2;
    }
    console.error(
      `itsm-rules ${command.name}: ${error instanceof Error ? error.message : String(error)}`,
    );
    return 1;
  }
}
