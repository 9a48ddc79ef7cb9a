// The Worker the `workers-connector` pool runs beside its tests (vitest.config.ts `main`): the
// engine all-in-one over the ServiceNow instance face (ITSM_SERVICENOW_URL), consuming its test
// Queue as Cloudflare would: the drains the cron poll and the push queue arrive here. Its log
// lines are kept for the tests to read.
import { createWorker, type WorkerEnv } from '../../../src/runtime/worker.js';
import { serviceNowRules } from './rules.js';

export const mainLogs: string[] = [];

export const mainWorker = createWorker({
  rules: serviceNowRules,
  clientRetry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
  servicenow: { retry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 } },
  feedLeaseWaitMs: 200,
  log: (line) => mainLogs.push(line),
});

export default {
  fetch: (request: Request, env: WorkerEnv, ctx: ExecutionContext) =>
    mainWorker.fetch(request, env, ctx),
  queue: (batch: MessageBatch<unknown>, env: WorkerEnv, ctx: ExecutionContext) =>
    mainWorker.queue(batch, env, ctx),
  scheduled: (controller: ScheduledController, env: WorkerEnv, ctx: ExecutionContext) =>
    mainWorker.scheduled(controller, env, ctx),
} satisfies ExportedHandler<WorkerEnv>;
