// "Retry parked work now", the one implementation behind POST /admin/parked/retry and the
// console's Retry buttons: the parked objects a filter selects are made due at once, and each of
// their accounts is drained now (the Node queue, or a Queue message on Workers) rather than at its
// next notification or retry tick. The drain then retries them in order (src/webhook/park.ts).
import type { ParkedObject, ParkedQuery, PipelineStore } from '../storage/pipeline-port.js';

/** Which parked objects to retry: one by id, those of an account or object, or (empty) all. */
export type ParkedRetryFilter = Pick<ParkedQuery, 'id' | 'account' | 'objectId'>;

export interface ParkedRetryDeps {
  pipelineStore: PipelineStore;
  /** Starts a drain of each account now; absent: they are retried at the next drain. */
  drainNow?(accounts: readonly number[]): Promise<void> | void;
  now?: () => number;
}

/** Makes the selected parked objects due now and starts their accounts' drains; returns them. */
export async function retryParkedNow(
  deps: ParkedRetryDeps,
  filter: ParkedRetryFilter,
): Promise<ParkedObject[]> {
  const now = (deps.now ?? Date.now)();
  const due = await deps.pipelineStore.retryParkedAt(
    { ...filter, limit: Number.MAX_SAFE_INTEGER },
    now,
  );
  await deps.drainNow?.([...new Set(due.map((parked) => parked.account))]);
  return due;
}
