// Bindings the Worker tests see (vitest.config.ts, the `workers` project), what the project's
// globalSetup provides (scripts/worker-test-setup.ts), and Vite's glob import (test/worker/rules.ts).
import type { D1Migration } from '@cloudflare/vitest-pool-workers';
import type { WorkerEnv } from '../../src/runtime/worker.js';

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {
      DB: D1Database;
      TEST_MIGRATIONS: D1Migration[];
    }
  }
  interface ImportMeta {
    glob<T>(
      pattern: string | string[],
      options: { query?: string; import?: string; eager: true },
    ): Record<string, T>;
  }
}

declare module 'vitest' {
  export interface ProvidedContext {
    /** The embedded ITSM API, e.g. http://127.0.0.1:40001 (its routes under /v1). */
    itsmUrl: string;
    /** Scripts the API's faults: POST /faults, POST /faults/clear (`/sn/...`: the instance's). */
    controlUrl: string;
    /** The ServiceNow instance: the Table API face of a second embedded server. */
    snUrl: string;
    /** A person who works on the instance (Basic auth on its Table API). */
    snPerson: { username: string; password: string };
  }
}
