// The impact preview (POST /admin/rules/preview) as Node and the Worker serve it: a candidate
// rule set against the rules in force, over the API's retained events of every account the
// engine knows, each side counting in a throw-away engine store in memory, gone with the request
// (the live counts and claims are never read or written). Runtime-neutral.

import type { RuleSet } from '../engine/load.js';
import { type PreviewRequest, type PreviewResult, previewRules } from '../engine/replay.js';
import type { ItsmClient } from '../itsm/client.js';
import { createMemoryEngineStore } from '../storage/memory-engine.js';
import type { PipelineStore } from '../storage/pipeline-port.js';

export function inMemoryPreview(deps: {
  /** The client to the API, asked for at each request (a composition root makes it later). */
  client: () => Pick<ItsmClient, 'events' | 'list'>;
  /** The rules in force when the request comes (a reload may have replaced them). */
  rules: () => RuleSet;
  engineUser: string;
  pipelineStore: Pick<PipelineStore, 'listAccounts'>;
}): (request: PreviewRequest) => Promise<PreviewResult> {
  return async (request) =>
    previewRules(request, {
      client: deps.client(),
      baseline: deps.rules(),
      stores: { candidate: createMemoryEngineStore(), baseline: createMemoryEngineStore() },
      engineUser: deps.engineUser,
      accounts: (await deps.pipelineStore.listAccounts()).map((state) => state.account),
      now: Date.now(),
    });
}
