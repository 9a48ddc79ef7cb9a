// Fidelity: servicenow-rest-api (an independent ServiceNow client from the npm registry, not
// written by this project) run unmodified against the Table API face of the spawned
// `itsm-rules itsm-server`. The client only speaks https to `<instance>`, so the test puts TLS
// in front of the server on 127.0.0.1 (a self-signed certificate made here with openssl, given
// to the client through its own setNetworkOptions), as an instance sits behind TLS. The client
// has no paging; paging through Link is proven with plain HTTP in table-api.test.ts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:tls';
import ServiceNow from 'servicenow-rest-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_API_KEY } from '../helpers/itsm.js';
import { type CliProcess, spawnItsmServer } from '../helpers/serve.js';

interface ClientError {
  response?: {
    status: number;
    data: { error: { message: string; detail: string }; status: string };
  };
}
// biome-ignore lint/suspicious/noExplicitAny: the client's records are free-form
type SnRecord = Record<string, any>;

let server: CliProcess & { url: string };
let tls: Server;
let certDir: string;
let instance: string;

beforeAll(async () => {
  server = await spawnItsmServer([
    '--port=0',
    '--db=:memory:',
    `--api-key=${TEST_API_KEY}`,
    '--sn-user=integration:s3cret',
  ]);
  certDir = mkdtempSync(join(tmpdir(), 'itsm-rules-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(certDir, 'key.pem'),
      '-out',
      join(certDir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  const port = Number(new URL(server.url).port);
  // TLS in front of the server: each TLS connection is relayed to the server's port as it is.
  tls = createServer(
    { key: readFileSync(join(certDir, 'key.pem')), cert: readFileSync(join(certDir, 'cert.pem')) },
    (socket) => {
      const upstream = connect(port, '127.0.0.1');
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    },
  );
  await new Promise<void>((resolve) => tls.listen(0, '127.0.0.1', resolve));
  const address = tls.address();
  instance = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await new Promise((resolve) => tls?.close(resolve));
  await server?.stop();
  if (certDir) rmSync(certDir, { recursive: true, force: true });
});

let networkSet = false;

function client(user = 'integration', password = 's3cret') {
  const sn = new ServiceNow(instance, user, password);
  // setNetworkOptions replaces the module's axios with axios.create(options), whose result has
  // no create of its own: it can be called once per process, and then holds for every client.
  if (!networkSet) {
    sn.setNetworkOptions({
      httpsAgent: new Agent({ ca: readFileSync(join(certDir, 'cert.pem')) }),
    });
    networkSet = true;
  }
  return sn;
}

/** The client answers through callbacks, with the result or the axios error. */
function call<T>(run: (callback: (value: T | ClientError) => void) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    run((value) => (value instanceof Error ? reject(value) : resolve(value as T))),
  );
}

async function failure(run: (callback: (value: unknown) => void) => void): Promise<ClientError> {
  try {
    await call(run);
  } catch (error) {
    return error as ClientError;
  }
  throw new Error('the call succeeded');
}

describe('servicenow-rest-api against the Table API face', () => {
  it.each<[string, SnRecord, SnRecord, SnRecord, SnRecord]>([
    [
      'incident',
      { short_description: 'Mail down', impact: '1 - High', urgency: '2 - Medium' },
      { impact: '1 - High', priority: '2 - High' },
      { state: 'In Progress' },
      { state: 'In Progress' },
    ],
    [
      'problem',
      { short_description: 'Mail keeps failing', state: 'Assess' },
      { state: 'Assess' },
      { state: 'Root Cause Analysis' },
      { state: 'Root Cause Analysis' },
    ],
    [
      'change_request',
      { short_description: 'Replace relay', risk: 'Moderate' },
      { risk: 'Moderate' },
      { approval: 'Requested' },
      { approval: 'Requested' },
    ],
    [
      'kb_knowledge',
      { short_description: 'Restart mail', text: 'Do this' },
      { text: 'Do this' },
      { topic: 'Email' },
      { topic: 'Email' },
    ],
  ])(
    'creates, finds, updates and deletes a %s by number',
    async (table, data, created, update, updated) => {
      const sn = client();
      const made = await call<SnRecord>((cb) => sn.createNewTask(data, table, cb));
      expect(made).toMatchObject({ ...created, sys_created_by: 'integration' });
      const number = made.number as string;
      expect(number).toMatch(/^[A-Z]+\d{7}$/);

      const sysId = await call<string>((cb) => sn.getSysId(table, number, cb));
      expect(sysId).toBe(made.sys_id);
      const changed = await call<SnRecord>((cb) => sn.UpdateTask(table, number, update, cb));
      expect(changed).toMatchObject({ ...updated, number, sys_mod_count: '1' });

      const [read] = await call<SnRecord[]>((cb) =>
        sn.getTableData([], [`number=${number}`], table, cb),
      );
      expect(read).toMatchObject({ ...updated, number });

      const deleted = await call<{ status: number }>((cb) => sn.DeleteTask(table, number, cb));
      expect(deleted.status).toBe(204);
      expect(
        await call<SnRecord[]>((cb) => sn.getTableData([], [`number=${number}`], table, cb)),
      ).toEqual([]);
    },
  );

  it.each<[string, SnRecord, SnRecord]>([
    [
      'alm_asset',
      { display_name: 'Relay 1', quantity: '2' },
      { display_name: 'Relay 1', quantity: '2' },
    ],
    [
      'sys_user',
      { user_name: 'dana', first_name: 'Dana', last_name: 'Cole', name: 'Dana Cole' },
      { user_name: 'dana' },
    ],
    ['sys_user_group', { name: 'Network' }, { name: 'Network' }],
    [
      'cmdb_ci',
      { name: 'mail-01', operational_status: 'Operational' },
      { operational_status: 'Operational' },
    ],
  ])(
    'creates a %s and reads it back (these tables have no number for the client to update by)',
    async (table, data, expected) => {
      const sn = client();
      const made = await call<SnRecord>((cb) => sn.createNewTask(data, table, cb));
      expect(made).toMatchObject(expected);
      const listed = await call<SnRecord[]>((cb) =>
        sn.getTableData(['sys_id'], [`sys_id=${made.sys_id}`], table, cb),
      );
      expect(listed).toEqual([{ sys_id: made.sys_id }]);
    },
  );

  it('filters with encoded queries and shows display values and reference links', async () => {
    const sn = client();
    const dana = await call<SnRecord>((cb) =>
      sn.createNewTask({ user_name: 'dana2', name: 'Dana Two' }, 'sys_user', cb),
    );
    for (const [impact, caller] of [
      ['1 - High', 'Dana Two'],
      ['2 - Medium', ''],
      ['3 - Low', 'Dana Two'],
    ]) {
      await call((cb) =>
        sn.createNewTask(
          { short_description: 'query', category: 'q-test', impact, caller_id: caller },
          'incident',
          cb,
        ),
      );
    }
    const rows = await call<SnRecord[]>((cb) =>
      sn.getTableData(
        ['impact', 'caller_id', 'caller_id.user_name'],
        ['category=q-test', 'caller_idISNOTEMPTY', 'ORDERBYDESCimpact'],
        'incident',
        cb,
      ),
    );
    expect(rows).toEqual([
      {
        impact: '3 - Low',
        caller_id: {
          display_value: 'Dana Two',
          link: expect.stringMatching(new RegExp(`/api/now/table/sys_user/${dana.sys_id}$`)),
        },
        'caller_id.user_name': 'dana2',
      },
      {
        impact: '1 - High',
        caller_id: { display_value: 'Dana Two', link: expect.any(String) },
        'caller_id.user_name': 'dana2',
      },
    ]);
    const either = await call<SnRecord[]>((cb) =>
      sn.getTableData(['impact'], ['category=q-test', 'impact=1', 'ORimpact=2'], 'incident', cb),
    );
    expect(either.map((r) => r.impact).sort()).toEqual(['1 - High', '2 - Medium']);
    const sample = await call<SnRecord[]>((cb) => sn.getSampleData('incident', cb));
    expect(sample).toHaveLength(1);
  });

  it('gets ServiceNow error bodies for a bad table, a bad query, bad values and bad credentials', async () => {
    const sn = client();
    const table = await failure((cb) => sn.getTableData([], [], 'no_such_table', cb));
    expect(table.response?.status).toBe(400);
    expect(table.response?.data).toMatchObject({
      error: { message: 'Invalid table no_such_table' },
      status: 'failure',
    });

    const query = await failure((cb) => sn.getTableData([], ['priority~1'], 'incident', cb));
    expect(query.response?.status).toBe(400);
    expect(query.response?.data.error.message).toBe('Invalid sysparm_query');

    const value = await failure((cb) => sn.createNewTask({ impact: 'Enormous' }, 'incident', cb));
    expect(value.response?.status).toBe(400);
    expect(value.response?.data.error.detail).toMatch(/impact must be one of/);

    const denied = await failure((cb) =>
      client('integration', 'wrong').getSampleData('incident', cb),
    );
    expect(denied.response?.status).toBe(401);
    expect(denied.response?.data).toEqual({
      error: { message: 'User Not Authenticated', detail: expect.any(String) },
      status: 'failure',
    });
  });
});
