// Notifications spread over many accounts, end to end all-in-one on 127.0.0.1: a burst for
// accounts not yet pending is noted durably in batches (one transaction per turn of the loop)
// before any of it is answered 200, every account is then drained once its turn comes, and a
// batch that cannot be written is refused whole (503, nothing noted) so that the sender retries.
import { afterEach, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../helpers/serve.js';

const engines: TestEngine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.close();
});

const ACCOUNTS = Array.from({ length: 120 }, (_, i) => 500 + i);

async function burst(engine: TestEngine, accounts: readonly number[]) {
  return Promise.all(
    accounts.map((account) => engine.notify(JSON.stringify({ account, subscription: 1 }))),
  );
}

describe('notifications spread over many accounts', () => {
  it('notes each account of a burst before answering it, and drains every one', async () => {
    const engine = await startTestEngine();
    engines.push(engine);

    const answers = await burst(engine, ACCOUNTS);
    expect(answers.map((answer) => answer.status)).toEqual(ACCOUNTS.map(() => 200));
    // Answered, so noted: each account is in the store with the time of its notification.
    const noted = new Map(
      (await engine.pipelineStore.listAccounts()).map((state) => [state.account, state]),
    );
    for (const account of ACCOUNTS)
      expect(noted.get(account)?.notifiedAt).toEqual(expect.any(Number));

    await engine.idle();
    const drained = await engine.pipelineStore.listAccounts();
    for (const account of ACCOUNTS) {
      const state = drained.find((s) => s.account === account);
      // Drained to the end of its (empty) event log after its notification.
      expect(state?.drainedAt).toBeGreaterThanOrEqual(
        state?.notifiedAt ?? Number.POSITIVE_INFINITY,
      );
    }
  });

  it('refuses a whole burst it cannot note (503, nothing noted), and takes it once writable again', async () => {
    const engine = await startTestEngine();
    engines.push(engine);
    // Every write of the engine's connection fails, as on a read-only file.
    engine.database.pragma('query_only = 1');

    const refused = await burst(engine, ACCOUNTS);
    expect(refused.map((answer) => answer.status)).toEqual(ACCOUNTS.map(() => 503));
    expect(refused[0]?.json).toMatchObject({ error_code: 'unavailable' });
    expect(await engine.pipelineStore.listAccounts()).toEqual([]);
    expect(
      engine.logs.filter((line) => /could not enqueue the notification/.test(line)),
    ).toHaveLength(ACCOUNTS.length);

    engine.database.pragma('query_only = 0');
    const accepted = await burst(engine, ACCOUNTS);
    expect(accepted.map((answer) => answer.status)).toEqual(ACCOUNTS.map(() => 200));
    expect((await engine.pipelineStore.listAccounts()).map((state) => state.account)).toEqual(
      ACCOUNTS,
    );
  });
});
