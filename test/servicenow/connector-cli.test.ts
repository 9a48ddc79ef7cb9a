// `itsm-rules itsm-server --servicenow URL` as a user runs it: the flags and their env twins in
// --help, the start-up credential check against the instance (the Table API face in its own
// process), and bad settings refused with a clear message that never shows a secret.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliProcess, spawnCli, spawnItsmServer } from '../helpers/serve.js';

const TIMEOUT = 30_000;
const FLAGS: Record<string, string> = {
  servicenow: 'ITSM_SERVICENOW_URL',
  'sn-username': 'ITSM_SN_USERNAME',
  'sn-password': 'ITSM_SN_PASSWORD',
  'sn-client-id': 'ITSM_SN_CLIENT_ID',
  'sn-client-secret': 'ITSM_SN_CLIENT_SECRET',
  'sn-account': 'ITSM_SN_ACCOUNT',
  'poll-interval': 'ITSM_SN_POLL_MS',
  'sn-push-secret': 'ITSM_SN_PUSH_SECRET',
};

let face: CliProcess & { url: string };

beforeAll(async () => {
  face = await spawnItsmServer([
    '--port=0',
    '--db=:memory:',
    '--api-key=face-key',
    '--sn-user=integration:s3cret',
    '--sn-oauth-client=client:client-secret',
  ]);
}, TIMEOUT);

afterAll(async () => {
  await face?.stop();
});

async function run(args: string[], env: Record<string, string> = {}) {
  const cli = spawnCli(['itsm-server', '--port=0', '--db=:memory:', ...args], env);
  const exit = await cli.exited;
  return { exit, out: cli.stdout(), err: cli.stderr() };
}

describe('itsm-server --servicenow', () => {
  it(
    'lists every connector flag with its env twin in --help',
    async () => {
      const { out } = await run(['--help']);
      for (const [flag, env] of Object.entries(FLAGS)) {
        const line = out.split('\n').find((l) => l.trimStart().startsWith(`--${flag} `));
        expect(line, `--${flag} in --help`).toContain(env);
      }
    },
    TIMEOUT,
  );

  it(
    'starts over the instance with Basic credentials from the environment',
    async () => {
      const server = await spawnItsmServer(
        ['--port=0', '--db=:memory:', '--api-key=k', `--servicenow=${face.url}`],
        { ITSM_SN_USERNAME: 'integration', ITSM_SN_PASSWORD: 's3cret' },
      );
      try {
        expect(server.stderr()).toMatch(`serving ServiceNow ${face.url} as account 1`);
        expect(server.stderr() + server.stdout()).not.toMatch('s3cret');
      } finally {
        await server.stop();
      }
    },
    TIMEOUT,
  );

  it(
    'starts with OAuth when a client id and secret are given',
    async () => {
      const server = await spawnItsmServer([
        '--port=0',
        '--db=:memory:',
        '--api-key=k',
        `--servicenow=${face.url}`,
        '--sn-username=integration',
        '--sn-password=s3cret',
        '--sn-client-id=client',
        '--sn-client-secret=client-secret',
      ]);
      await server.stop();
      expect(server.stderr()).toMatch('serving ServiceNow');
    },
    TIMEOUT,
  );

  it(
    'refuses to start when the instance refuses the credentials, without printing them',
    async () => {
      const { exit, out, err } = await run([
        `--servicenow=${face.url}`,
        '--sn-username=integration',
        '--sn-password=not-the-password',
      ]);
      expect(exit.code).toBe(1);
      expect(err).toMatch(
        `cannot use the ServiceNow instance at ${face.url}: the instance refused the user`,
      );
      expect(out + err).not.toMatch('not-the-password');
    },
    TIMEOUT,
  );

  it.each([
    [['--servicenow=http://dev12345.service-now.com'], /must use https/],
    [['--servicenow=https://dev1.service-now.com/api/now'], /with no path or query/],
    [['--servicenow=https://dev1.service-now.com'], /needs the integration user/],
    [['--sn-username=x'], /only apply with --servicenow URL/],
    [
      [
        '--servicenow=https://dev1.service-now.com',
        '--sn-username=u',
        '--sn-password=p',
        '--sn-client-id=c',
      ],
      /OAuth needs both --sn-client-id and --sn-client-secret/,
    ],
    [
      [
        '--servicenow=https://dev1.service-now.com',
        '--sn-username=u',
        '--sn-password=p',
        '--sn-push-secret=short',
      ],
      /at least 16 characters/,
    ],
  ])(
    'refuses %j with a usage error',
    async (args, message) => {
      const { exit, err } = await run(args);
      expect(exit.code).toBe(2);
      expect(err).toMatch(message);
    },
    TIMEOUT,
  );
});
