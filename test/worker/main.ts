// The Worker the pool runs beside the tests (vitest.config.ts `main`): the engine over the example
// rules, consuming the test Queue as Cloudflare would (messages sent by the receiver arrive here
// in batches). It records each message it is handed, so tests can see what was enqueued.
import { createWorker, type WorkerEnv } from '../../src/runtime/worker.js';
import { exampleRules } from './rules.js';

export const delivered: { queue: string; body: unknown; attempts: number }[] = [];

export const mainWorker = createWorker({
  rules: exampleRules,
  clientRetry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 50 },
  log: () => {},
});

export default {
  fetch: (request: Request, env: WorkerEnv, ctx: ExecutionContext) =>
    mainWorker.fetch(request, env, ctx),
  async queue(batch: MessageBatch<unknown>, env: WorkerEnv, ctx: ExecutionContext) {
    for (const message of batch.messages) {
      delivered.push({ queue: batch.queue, body: message.body, attempts: message.attempts });
    }
    await mainWorker.queue(batch, env, ctx);
  },
  scheduled: (controller: ScheduledController, env: WorkerEnv, ctx: ExecutionContext) =>
    mainWorker.scheduled(controller, env, ctx),
} satisfies ExportedHandler<WorkerEnv>;
