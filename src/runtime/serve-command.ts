// `itsm-rules serve`: the engine as users run it. Flags (with environment twins) map onto
// startEngine; SIGHUP reloads the rules, SIGINT/SIGTERM shut down after the page in hand. Also
// the `--faults` flag shared with `itsm-server` (fault injection into the embedded API).

import {
  describeFaultSpec,
  FAULTS_PATH,
  type FaultRates,
  FaultSpecError,
  parseFaultSpec,
} from '../server/faults.js';
import type { TableApiOptions } from '../server/table-api.js';
import { DEFAULT_ENGINE_USER, DEFAULT_OBJECT_CONCURRENCY } from '../webhook/drain.js';
import { RECEIVER_PATH } from '../webhook/receiver.js';
import {
  type Command,
  type FlagSpec,
  type FlagValues,
  isLoopback,
  list,
  positiveInt,
  UsageError,
} from './command.js';
import type { RunningEngine } from './engine.js';
import { letYoungGenerationGrow } from './heap.js';
import { httpAllowFlag, httpAllowFromFlag } from './rule-commands.js';
import { RuleDirectoryError } from './rule-files.js';
import { serviceNowFlags, serviceNowFromFlags } from './servicenow-flags.js';

export const DEV_API_KEY = 'dev-api-key';
export const DEFAULT_ENGINE_PORT = 8787;
export const DEV_APP_ID = 'itsm-rules-dev';

/** `--faults`: a testing aid of the embedded API (itsm-server, and serve all-in-one). */
export const faultsFlag: FlagSpec = {
  name: 'faults',
  env: 'ITSM_FAULTS',
  type: 'string',
  placeholder: 'SPEC',
  description: [
    'TESTING AID, never for production: make the embedded API fail on purpose',
    'at these rates, to prove that clients retry and write exactly once. SPEC is name=value',
    'parts joined by commas, e.g. 500=0.1,429=0.05,retry-after=1,latency=20ms,latency-rate=0.5,',
    'after-write=0.05,drop=0.05,seed=42. A SHARE is 0.05 or 5%; 500, 429 and latency apply to',
    'every /v1 request, after-write and drop to writes only:',
    ...describeFaultSpec().map((line) => `  ${line}`),
    `The seed is logged at start; GET ${FAULTS_PATH} (API key) answers the counters by kind.`,
  ].join('\n'),
};

/** The rates of `--faults`, or undefined without it; a bad spec is a usage error naming the part. */
export function faultsFromFlag(values: FlagValues): FaultRates | undefined {
  const spec = values.faults;
  if (typeof spec !== 'string') return undefined;
  try {
    return parseFaultSpec(spec);
  } catch (error) {
    if (error instanceof FaultSpecError) throw new UsageError(`--faults: ${error.message}`);
    throw error;
  }
}

/** `--sn-user`: a ServiceNow user of the Table API face (itsm-server, and serve all-in-one). */
export const snUserFlag: FlagSpec = {
  name: 'sn-user',
  env: 'ITSM_SN_USERS',
  type: 'string',
  multiple: true,
  placeholder: 'NAME:PASSWORD[:ACCOUNT]',
  description:
    'a user of the ServiceNow Table API face (/api/now/table), signing in with HTTP Basic or OAuth, in ACCOUNT (default 1); a sys_user record of that name is created on first use (repeatable; env: comma-separated)',
};

/** `--sn-oauth-client`: an OAuth client allowed at `POST /oauth_token.do`. */
export const snOAuthClientFlag: FlagSpec = {
  name: 'sn-oauth-client',
  env: 'ITSM_SN_OAUTH_CLIENTS',
  type: 'string',
  multiple: true,
  placeholder: 'ID:SECRET',
  description:
    'an OAuth client of the Table API face: POST /oauth_token.do gives it tokens (password and refresh_token grants, expiring after 1800 s) for --sn-user users (repeatable; env: comma-separated)',
};

/** The Table API face's users and OAuth clients from `--sn-user` and `--sn-oauth-client`. */
export function tableApiFromFlags(values: FlagValues): TableApiOptions {
  const users = list(values['sn-user']).map((spec) => {
    const match = /^([^:]+):(.+?)(?::(\d{1,15}))?$/.exec(spec);
    if (!match) {
      throw new UsageError(
        `--sn-user must be NAME:PASSWORD[:ACCOUNT] (a numeric account, default 1), got ${JSON.stringify(spec)}`,
      );
    }
    return {
      name: match[1] as string,
      password: match[2] as string,
      account: Number(match[3] ?? 1),
    };
  });
  const names = users.map((u) => `${u.account}:${u.name}`);
  const repeated = names.find((name, i) => names.indexOf(name) !== i);
  if (repeated) {
    throw new UsageError(
      `--sn-user names ${repeated.split(':').slice(1).join(':')} twice in account ${repeated.split(':')[0]}`,
    );
  }
  const oauthClients = list(values['sn-oauth-client']).map((spec) => {
    const colon = spec.indexOf(':');
    if (colon <= 0 || colon === spec.length - 1) {
      throw new UsageError(`--sn-oauth-client must be ID:SECRET, got ${JSON.stringify(spec)}`);
    }
    return { id: spec.slice(0, colon), secret: spec.slice(colon + 1) };
  });
  return { users, oauthClients };
}

const serveFlags: FlagSpec[] = [
  {
    name: 'port',
    env: 'ITSM_RULES_PORT',
    type: 'string',
    default: String(DEFAULT_ENGINE_PORT),
    placeholder: 'N',
    description: 'port to listen on (0: any free port)',
  },
  {
    name: 'host',
    env: 'ITSM_RULES_HOST',
    type: 'string',
    default: '127.0.0.1',
    placeholder: 'ADDR',
    description: 'address to listen on',
  },
  {
    name: 'rules',
    env: 'ITSM_RULES_DIR',
    type: 'string',
    default: './rules',
    placeholder: 'DIR',
    description: 'folder of rule files; reloaded on change, keeping the last good set',
  },
  {
    name: 'db',
    env: 'ITSM_RULES_DB',
    type: 'string',
    default: './data/engine.db',
    placeholder: 'PATH',
    description:
      "SQLite file of the engine's state (and, all-in-one, the embedded API's data), or :memory:",
  },
  {
    name: 'api-url',
    env: 'ITSM_API_URL',
    type: 'string',
    placeholder: 'URL',
    description:
      'the ITSM API to act through (https://itsm.example.com/v1); absent: serve the embedded API under /v1 (all-in-one)',
  },
  {
    name: 'api-key',
    env: 'ITSM_API_KEY',
    type: 'string',
    placeholder: 'KEY',
    description: `application API key: API calls, webhook signatures and admin endpoints. Default all-in-one on loopback: ${DEV_API_KEY}`,
  },
  {
    name: 'previous-key',
    env: 'ITSM_PREVIOUS_KEYS',
    type: 'string',
    multiple: true,
    placeholder: 'KEY',
    description:
      'an older API key still accepted on webhook signatures and admin calls during a rotation (repeatable; env: comma-separated)',
  },
  {
    name: 'app-id',
    env: 'ITSM_APP_ID',
    type: 'string',
    placeholder: 'ID',
    description: `application id, answered in webhook handshakes. Default: ${DEV_APP_ID}`,
  },
  {
    name: 'as-user',
    env: 'ITSM_RULES_AS_USER',
    type: 'string',
    default: DEFAULT_ENGINE_USER,
    placeholder: 'USER_ID',
    description:
      "the user the engine acts as (X-Kloudless-As-User); events by this user are the engine's own writes",
  },
  httpAllowFlag,
  {
    name: 'from',
    env: 'ITSM_RULES_FROM',
    type: 'string',
    default: 'oldest',
    placeholder: 'oldest|latest',
    description:
      "where an account's first drain starts: its oldest retained event, or only what happens from now on",
  },
  {
    name: 'concurrency',
    env: 'ITSM_RULES_CONCURRENCY',
    type: 'string',
    default: '16',
    placeholder: 'N',
    description:
      'accounts drained at the same time (one drain per account at a time; a busy one yields to the others after its turn)',
  },
  {
    name: 'object-concurrency',
    env: 'ITSM_RULES_OBJECT_CONCURRENCY',
    type: 'string',
    default: String(DEFAULT_OBJECT_CONCURRENCY),
    placeholder: 'N',
    description:
      "objects of one account processed at the same time (1..64); each object's events strictly in order",
  },
  {
    name: 'page-size',
    env: 'ITSM_RULES_PAGE_SIZE',
    type: 'string',
    default: '100',
    placeholder: 'N',
    description: 'events per page pulled from the API (1..1000)',
  },
  {
    name: 'reload-interval',
    env: 'ITSM_RULES_RELOAD_MS',
    type: 'string',
    default: '1000',
    placeholder: 'MS',
    description:
      'how often the rules folder is checked for changes (0: no hot reload; SIGHUP still reloads)',
  },
  {
    name: 'retention-days',
    env: 'ITSM_RULES_RETENTION_DAYS',
    type: 'string',
    default: '30',
    placeholder: 'N',
    description: 'run records, plans and effects are kept this many days',
  },
  {
    name: 'console-session-hours',
    env: 'ITSM_CONSOLE_SESSION_HOURS',
    type: 'string',
    default: '8',
    placeholder: 'N',
    description: 'a sign-in to the operator console (/) lasts this many hours',
  },
  {
    name: 'no-schedules',
    env: 'ITSM_RULES_NO_SCHEDULES',
    type: 'boolean',
    description: 'do not run scheduled rules on the clock (POST /admin/schedules/run still does)',
  },
  {
    name: 'public-url',
    env: 'ITSM_RULES_PUBLIC_URL',
    type: 'string',
    placeholder: 'URL',
    description: `with --api-url: the engine's URL as the API reaches it (behind a proxy: https://engine.example.com); the receiver registered is URL${RECEIVER_PATH}. Default: the address it listens on`,
  },
  {
    name: 'no-register-webhook',
    env: 'ITSM_RULES_NO_REGISTER_WEBHOOK',
    type: 'boolean',
    description:
      "with --api-url: do not register the receiver as the application's webhook at start (nor remove it at shutdown); register it yourself",
  },
  { ...faultsFlag, description: `(all-in-one only) ${faultsFlag.description}` },
  { ...snUserFlag, description: `(all-in-one only) ${snUserFlag.description}` },
  { ...snOAuthClientFlag, description: `(all-in-one only) ${snOAuthClientFlag.description}` },
  // The same flags as `itsm-server --servicenow`: all-in-one, the embedded API serves the instance.
  ...serviceNowFlags.map((flag) => ({
    ...flag,
    description: `(all-in-one only) ${flag.description}`,
  })),
];

/** `--public-url` as a base URL (no query or fragment; a trailing slash is dropped). */
function publicBaseUrl(text: string): string {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    parsed = new URL('invalid:');
  }
  if (
    (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') ||
    parsed.search !== '' ||
    parsed.hash !== ''
  ) {
    throw new UsageError(
      `--public-url must be the engine's base URL as the API reaches it, such as https://engine.example.com (no query), got ${JSON.stringify(text)}`,
    );
  }
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
}

export const serveCommand: Command = {
  name: 'serve',
  summary:
    'run the engine: webhook receiver, drain, rules, scheduled rules, run records (all-in-one without --api-url)',
  flags: serveFlags,
  async run(values) {
    const host = String(values.host);
    const apiUrl = values['api-url'] as string | undefined;
    const givenKey = values['api-key'] as string | undefined;
    if (apiUrl) {
      try {
        const parsed = new URL(apiUrl);
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error();
      } catch {
        throw new UsageError(
          `--api-url must be an http(s) URL such as https://itsm.example.com/v1, got ${JSON.stringify(apiUrl)}`,
        );
      }
      if (!givenKey) throw new UsageError('--api-key is required with --api-url');
    } else if (!givenKey && !isLoopback(host)) {
      throw new UsageError(`--api-key is required when listening on ${host} (beyond loopback)`);
    }
    const faults = faultsFromFlag(values);
    if (faults && apiUrl) {
      throw new UsageError(
        '--faults works on the embedded API only (all-in-one); it cannot be used with --api-url',
      );
    }
    const tableApi = tableApiFromFlags(values);
    if (apiUrl && (tableApi.users?.length || tableApi.oauthClients?.length)) {
      throw new UsageError(
        '--sn-user and --sn-oauth-client configure the embedded API (all-in-one); they cannot be used with --api-url',
      );
    }
    const servicenow = serviceNowFromFlags(values);
    if (servicenow && apiUrl) {
      throw new UsageError(
        '--servicenow runs the API over the instance inside the engine (all-in-one); with --api-url the engine acts through another API, so give --servicenow to that itsm-server instead',
      );
    }
    if (servicenow && (tableApi.users?.length || tableApi.oauthClients?.length)) {
      throw new UsageError(
        '--sn-user and --sn-oauth-client configure the embedded Table API face, which stands in for an instance; with --servicenow the instance is the real one',
      );
    }
    const publicUrl = values['public-url'] as string | undefined;
    const noRegister = values['no-register-webhook'] === true;
    if (!apiUrl && (publicUrl || noRegister)) {
      throw new UsageError(
        `${publicUrl ? '--public-url' : '--no-register-webhook'} applies with --api-url only (all-in-one, the engine registers its receiver with its own embedded API)`,
      );
    }
    const receiverUrl = publicUrl ? `${publicBaseUrl(publicUrl)}${RECEIVER_PATH}` : undefined;
    const from = String(values.from);
    if (from !== 'oldest' && from !== 'latest') {
      throw new UsageError(`--from must be oldest or latest, got ${JSON.stringify(from)}`);
    }
    const apiKey = givenKey ?? DEV_API_KEY;
    const appId = (values['app-id'] as string | undefined) ?? DEV_APP_ID;
    const rulesDir = String(values.rules);
    const log = (line: string) => console.error(line);

    // Loaded here, not at the top: the engine brings the server, SQLite and the HTTP stack, which
    // `check`, `schema` and `--help` have no use for (they start in a fraction of the time).
    const { MissingSecretsError, RuleSetError, startEngine } = await import('./engine.js');
    let engine: RunningEngine;
    try {
      engine = await startEngine({
        port: positiveInt('port', String(values.port), 0, 65_535),
        host,
        rulesDir,
        db: String(values.db),
        ...(apiUrl && { apiUrl }),
        apiKey,
        previousKeys: list(values['previous-key']),
        appId,
        engineUser: String(values['as-user']),
        httpAllow: httpAllowFromFlag(values),
        from,
        concurrency: positiveInt('concurrency', String(values.concurrency), 1, 256),
        objectConcurrency: positiveInt(
          'object-concurrency',
          String(values['object-concurrency']),
          1,
          64,
        ),
        pageSize: positiveInt('page-size', String(values['page-size']), 1, 1000),
        reloadIntervalMs: positiveInt('reload-interval', String(values['reload-interval']), 0),
        retentionMs: positiveInt('retention-days', String(values['retention-days'])) * 86_400_000,
        schedules: values['no-schedules'] !== true,
        console: {
          sessionTtlMs:
            positiveInt('console-session-hours', String(values['console-session-hours']), 1, 720) *
            3_600_000,
        },
        ...(faults && { faults }),
        ...(!apiUrl && { itsm: { tableApi } }),
        ...(servicenow && { servicenow }),
        ...(apiUrl && { registerWebhook: !noRegister }),
        ...(receiverUrl && { receiverUrl }),
        log,
      });
    } catch (error) {
      if (
        error instanceof RuleSetError ||
        error instanceof RuleDirectoryError ||
        error instanceof MissingSecretsError
      ) {
        console.error(`itsm-rules serve: ${error.message}`);
        return 1;
      }
      throw error;
    }
    const rules = engine.rules();
    console.log(
      `itsm-rules listening on ${engine.url} (${rules.rules.length} rules from ${rulesDir}, db ${values.db})`,
    );
    if (rules.rules.length === 0) {
      console.error(
        `itsm-rules: no rule files (.yaml, .yml, .json) in ${rulesDir}: nothing acts until rules are added there (the folder is checked for changes${values['reload-interval'] === '0' ? ' on SIGHUP and POST /admin/rules/reload' : ''})`,
      );
    }
    letYoungGenerationGrow();
    console.log(`webhook receiver: ${engine.url}${RECEIVER_PATH}`);
    const registered = receiverUrl ?? `${engine.url}${RECEIVER_PATH}`;
    console.log(
      engine.itsm
        ? servicenow
          ? `itsm-api (embedded, all-in-one): ${engine.apiUrl}, app ${appId}, objects in ServiceNow ${servicenow.instanceUrl} as account ${servicenow.account ?? 1}`
          : `itsm-api (embedded, all-in-one): ${engine.apiUrl}, app ${appId}`
        : noRegister
          ? `itsm-api: ${engine.apiUrl}; register ${registered} as the application's webhook`
          : `itsm-api: ${engine.apiUrl}; registering ${registered} as the application's webhook (removed at shutdown)`,
    );
    if (apiUrl && !noRegister && !receiverUrl && (host === '0.0.0.0' || host === '::')) {
      // The address of every interface is no address another host can call.
      console.log(
        `itsm-rules: listening on every interface, so the receiver registered is ${registered}; give --public-url with the address the API reaches this engine by`,
      );
    }
    if (!givenKey) {
      console.log(
        `itsm-rules: no --api-key given; using the development key "${apiKey}" (loopback only)`,
      );
    }

    const onHangup = () => void engine.reloadRules();
    process.on('SIGHUP', onHangup);
    await new Promise<void>((resolve) => {
      const onSignal = () => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
    process.off('SIGHUP', onHangup);
    console.log('itsm-rules: shutting down (finishing the page in hand)');
    await engine.close();
    return 0;
  },
};
