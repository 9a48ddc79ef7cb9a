// What the console reads and may do, given by each runtime (src/runtime/engine.ts on Node,
// src/runtime/worker.ts on Workers) through createEngineApp.
import type { RuleSet } from '../engine/load.js';
import type { RuleProblem } from '../engine/problem.js';
import type { ParkedObject, PipelineStore } from '../storage/pipeline-port.js';
import type { EngineMetrics } from '../webhook/metrics.js';
import type { ParkedRetryFilter } from '../webhook/parked-retry.js';
import type { ScheduleRequest, ScheduleSummary } from '../webhook/schedule.js';

/** The rule set running now and what happened at its last load. */
export interface ConsoleRuleState {
  ruleSet: RuleSet;
  /** What `check` warns about in the running set (likely wrong, but loaded). */
  warnings: readonly RuleProblem[];
  /** When the running set was loaded. */
  loadedAt: number;
  /** The latest reload that was refused since then (the running set stayed), with its problems. */
  refused: { at: number; problems: readonly string[] } | null;
  /** Where the rules come from: a folder (Node), or `bundled` (Workers). */
  source: string;
}

/** The runtime's part: what createEngineApp does not already know. */
export interface ConsoleSettings {
  rules(): ConsoleRuleState;
  /** The ITSM API the engine acts through (`embedded` when it is served by this very process). */
  apiUrl: string;
  /** How long a session lasts; default 8 hours. */
  sessionTtlMs?: number;
  /** The clock of sessions and of the overview's window (tests move it). */
  now?: () => number;
}

export interface ConsoleOptions extends ConsoleSettings {
  keys: () => readonly string[];
  pipelineStore: PipelineStore;
  metrics: EngineMetrics;
  runSchedules(request: ScheduleRequest): Promise<ScheduleSummary>;
  /** What POST /admin/parked/retry does (src/webhook/parked-retry.ts): the objects made due. */
  retryParked(filter: ParkedRetryFilter): Promise<ParkedObject[]>;
  /** Absent where rules are bundled (Workers). */
  reloadRules?(): Promise<{ ok: boolean; rules: number; problems: string[] }>;
}
