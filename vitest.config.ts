// Three test projects: `node` (everything under src/ and test/ except the Worker's own tests),
// `connector` (the /v1 contract suite, test/itsm-api/**, again over the ServiceNow connector with
// the embedded Table API face as the instance: ITSM_TEST_BACKEND=servicenow, read by
// test/helpers/itsm.ts), `workers` (test/worker/**, run inside workerd by
// @cloudflare/vitest-pool-workers, with a local D1 database migrated from migrations/ by
// test/worker/setup.ts) and `workers-connector` (test/worker/connector/**: the same Worker
// configured over a ServiceNow instance, ITSM_SERVICENOW_URL instead of ITSM_API_URL, with a D1
// database and a Queue of its own). `npm test` runs all four.
import { cloudflareTest, readD1Migrations } from '@cloudflare/vitest-pool-workers';
import type { ProvidedContext } from 'vitest';
import { defineConfig } from 'vitest/config';
import {
  WORKER_TEST_API_KEY,
  WORKER_TEST_APP_ID,
  WORKER_TEST_SN,
} from './scripts/worker-test-setup.js';

// Wrangler and miniflare stay offline and keep their state inside the repository (DEVELOPERS.md).
process.env.WRANGLER_SEND_METRICS ??= 'false';
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= 'false';
process.env.WRANGLER_HIDE_BANNER ??= 'true';
process.env.XDG_CONFIG_HOME ??= new URL('./.wrangler/config', import.meta.url).pathname;

const migrationsDir = new URL('./migrations', import.meta.url).pathname;
const WORKER_QUEUE = 'itsm-rules-drain';

/** vitest's `inject`, for what the global set-up provides (itsmUrl, snUrl). */
type Inject = <K extends keyof ProvidedContext & string>(key: K) => ProvidedContext[K];

/**
 * A Worker under test (`main`) with a local D1 migrated from migrations/, the drain Queue it
 * consumes itself, the API key and app id of the tests, and its own `bindings`.
 */
function workerUnderTest(main: string, bindings: (inject: Inject) => Record<string, string>) {
  return cloudflareTest(async ({ inject }) => ({
    main,
    miniflare: {
      compatibilityDate: '2026-05-01',
      d1Databases: ['DB'],
      queueProducers: { QUEUE: WORKER_QUEUE },
      queueConsumers: {
        [WORKER_QUEUE]: { maxBatchSize: 10, maxBatchTimeout: 0, maxRetries: 3 },
      },
      bindings: {
        TEST_MIGRATIONS: await readD1Migrations(migrationsDir),
        ITSM_API_KEY: WORKER_TEST_API_KEY,
        ITSM_APP_ID: WORKER_TEST_APP_ID,
        ...bindings(inject),
      },
    },
  }));
}

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'node',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/worker/**', '**/node_modules/**'],
          setupFiles: ['./test/helpers/yaml-library.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'connector',
          include: ['test/itsm-api/**/*.test.ts'],
          setupFiles: ['./test/helpers/yaml-library.ts'],
          env: { ITSM_TEST_BACKEND: 'servicenow' },
        },
      },
      {
        extends: true,
        plugins: [
          // The engine over the example rules, beside the tests: it consumes the test Queue.
          workerUnderTest('./test/worker/main.ts', (inject) => ({
            ITSM_API_URL: `${inject('itsmUrl')}/v1`,
          })),
        ],
        test: {
          name: 'workers',
          include: ['test/worker/**/*.test.ts'],
          exclude: ['test/worker/connector/**', '**/node_modules/**'],
          // The embedded ITSM API on 127.0.0.1, in Node, for the Worker to call (provide: itsmUrl).
          globalSetup: ['./scripts/worker-test-setup.ts'],
          setupFiles: ['./test/worker/setup.ts'],
        },
      },
      {
        extends: true,
        plugins: [
          // The engine all-in-one over the instance face: it consumes its own test Queue.
          workerUnderTest('./test/worker/connector/main.ts', (inject) => ({
            ITSM_SERVICENOW_URL: inject('snUrl'),
            ITSM_SN_USERNAME: WORKER_TEST_SN.username,
            ITSM_SN_PASSWORD: WORKER_TEST_SN.password,
            ITSM_SN_PUSH_SECRET: WORKER_TEST_SN.pushSecret,
          })),
        ],
        test: {
          name: 'workers-connector',
          include: ['test/worker/connector/**/*.test.ts'],
          globalSetup: ['./scripts/worker-test-setup.ts'],
          setupFiles: ['./test/worker/setup.ts'],
        },
      },
    ],
  },
});
