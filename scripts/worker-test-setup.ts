// vitest globalSetup of the `workers` and `workers-connector` projects (vitest.config.ts), run in
// Node before the Worker tests: the embedded ITSM API (src/server, SQLite :memory:, scripted
// fault injection on) on 127.0.0.1, which the Worker under test reaches with real fetch; a second
// one that stands in for a ServiceNow instance through its Table API face (`/api/now/table/*`,
// with an integration user and a ServiceNow user, faults on), which the Worker's connector polls
// and writes; and a small control server beside them through which tests inside workerd script
// either's faults (they cannot reach the Node process's FaultControllers otherwise). The URLs
// are handed to the tests with `provide`.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { startItsmServer } from '../src/runtime/node.js';
import type { ScriptedFault } from '../src/server/faults.js';

/** The key and application id of the API the Worker tests run against. */
export const WORKER_TEST_API_KEY = 'worker-test-key';
export const WORKER_TEST_APP_ID = 'worker-test-app';
/** The instance's users: the connector's integration user, and a person who works there. */
export const WORKER_TEST_SN = {
  username: 'integration',
  password: 'in7egration-pw',
  person: { username: 'ann', password: 'ann-pw' },
  pushSecret: 'push-secret-of-the-worker-tests',
} as const;

declare module 'vitest' {
  export interface ProvidedContext {
    /** The embedded ITSM API, e.g. http://127.0.0.1:40001 (its routes under /v1). */
    itsmUrl: string;
    /** POST /faults {ScriptedFault, path as {regex}}; POST /faults/clear (`/sn/...`: the instance's). */
    controlUrl: string;
    /** The ServiceNow instance (the Table API face of a second embedded server). */
    snUrl: string;
    /** A person who works on the instance (Basic auth on its Table API). */
    snPerson: { username: string; password: string };
  }
}

/** A scripted fault as JSON: `path` is a string, or `{regex}` for a RegExp. */
type FaultJson = Omit<ScriptedFault, 'path'> & { path?: string | { regex: string } };

async function readJson(request: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? JSON.parse(text) : {};
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const itsm = await startItsmServer({
    port: 0,
    host: '127.0.0.1',
    db: ':memory:',
    apiKey: WORKER_TEST_API_KEY,
    appId: WORKER_TEST_APP_ID,
    faults: {},
    log: () => {},
  });
  const instance = await startItsmServer({
    port: 0,
    host: '127.0.0.1',
    db: ':memory:',
    apiKey: 'instance-key',
    appId: 'instance-app',
    faults: {},
    tableApi: {
      users: [
        { name: WORKER_TEST_SN.username, password: WORKER_TEST_SN.password, account: 1 },
        {
          name: WORKER_TEST_SN.person.username,
          password: WORKER_TEST_SN.person.password,
          account: 1,
        },
      ],
    },
    log: () => {},
  });
  const controllers = { '': itsm.itsm.faults, '/sn': instance.itsm.faults };
  if (!controllers[''] || !controllers['/sn']) {
    throw new Error('the embedded ITSM API was started without fault injection');
  }

  const answer = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'Content-Type': 'application/json' });
    response.end(JSON.stringify(body));
  };
  const control = createServer((request, response) => {
    void (async () => {
      try {
        const prefix = request.url?.startsWith('/sn/') ? '/sn' : '';
        const faults = controllers[prefix] as NonNullable<(typeof controllers)['']>;
        const route = request.url?.slice(prefix.length);
        if (request.method === 'POST' && route === '/faults') {
          const { path, ...fault } = (await readJson(request)) as FaultJson;
          faults.inject({
            ...fault,
            ...(path !== undefined && {
              path: typeof path === 'string' ? path : new RegExp(path.regex),
            }),
          });
          return answer(response, 200, { pending: faults.pending() });
        }
        if (request.method === 'POST' && route === '/faults/clear') {
          faults.clear();
          return answer(response, 200, { pending: 0 });
        }
        answer(response, 404, { message: `no control route ${request.method} ${request.url}` });
      } catch (error) {
        answer(response, 400, { message: (error as Error).message });
      }
    })();
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  const { port } = control.address() as AddressInfo;

  project.provide('itsmUrl', itsm.url);
  project.provide('controlUrl', `http://127.0.0.1:${port}`);
  project.provide('snUrl', instance.url);
  project.provide('snPerson', { ...WORKER_TEST_SN.person });
  return async () => {
    await new Promise<void>((resolve) => control.close(() => resolve()));
    await itsm.close();
    await instance.close();
  };
}
