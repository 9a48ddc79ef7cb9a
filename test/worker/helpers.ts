// Factories of the Worker tests, inside workerd: the embedded ITSM API started by the project's
// globalSetup (scripts/worker-test-setup.ts) reached over real HTTP on 127.0.0.1, its scripted
// faults, signed notifications handed to a Worker's fetch, queue batches handed to its queue
// handler (with the ack/retry outcome), the engine's D1 state, and polling.

import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { inject } from 'vitest';
import { signBody } from '../../src/itsm/signature.js';
import {
  type CreateWorkerOptions,
  createWorker,
  type EngineWorker,
  type WorkerEnv,
} from '../../src/runtime/worker.js';
import { openD1EngineStore, openD1PipelineStore } from '../../src/storage/d1.js';
import type { RunRecord } from '../../src/storage/pipeline-port.js';
import { DEFAULT_ENGINE_USER } from '../../src/webhook/drain.js';
import { eventually as pollUntil } from '../helpers/eventually.js';
import { exampleRules } from './rules.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
export type Json = any;

export const QUEUE_NAME = 'itsm-rules-drain';

/** The bindings and vars of the workers project (vitest.config.ts), typed as the Worker's. */
export const workerEnv = env as unknown as WorkerEnv & {
  ITSM_API_KEY: string;
  ITSM_APP_ID: string;
};
const API_KEY = workerEnv.ITSM_API_KEY;
export const APP_ID = workerEnv.ITSM_APP_ID;
export const pipelineStore = openD1PipelineStore(workerEnv.DB);
export const engineStore = openD1EngineStore(workerEnv.DB);

/** A Worker of its own over the example rules, quick client retries, logging into `logs`. */
export function newWorker(
  logs: string[] = [],
  overrides: Partial<CreateWorkerOptions> = {},
): EngineWorker {
  return createWorker({
    rules: exampleRules,
    clientRetry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 20 },
    log: (line) => logs.push(line),
    ...overrides,
  });
}

/** A JSON call to the embedded ITSM API with the application key; anything but a 2xx throws. */
async function api(method: string, path: string, body?: unknown): Promise<Json> {
  const response = await fetch(`${inject('itsmUrl')}/v1${path}`, {
    method,
    headers: {
      Authorization: `APIKey ${API_KEY}`,
      ...(body !== undefined && { 'Content-Type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

export async function createIncident(account: number, fields: object): Promise<Json> {
  return api('POST', `/accounts/${account}/itsm/incidents`, fields);
}

/** Every event the API holds for the account, oldest first. */
export async function allEvents(account: number): Promise<Json[]> {
  const page = await api('GET', `/accounts/${account}/events?page_size=1000`);
  return page.objects;
}

/** Whether the engine wrote the event (it acts as DEFAULT_ENGINE_USER: no ITSM_RULES_AS_USER). */
export const isEngineEvent = (event: Json): boolean => event.user_id === DEFAULT_ENGINE_USER;

/** The events the engine wrote to the account, oldest first. */
export async function engineEvents(account: number): Promise<Json[]> {
  return (await allEvents(account)).filter(isEngineEvent);
}

export async function listObjects(
  account: number,
  type: 'incidents' | 'problems' | 'changes',
): Promise<Json[]> {
  return (await api('GET', `/accounts/${account}/itsm/${type}?page_size=1000`)).objects;
}

/** Scripts a fault of the embedded API: `path` as a string, or `{regex}`. */
export async function injectFault(fault: Record<string, unknown>): Promise<void> {
  const response = await fetch(`${inject('controlUrl')}/faults`, {
    method: 'POST',
    body: JSON.stringify(fault),
  });
  if (!response.ok) throw new Error(`injecting a fault failed: ${await response.text()}`);
}

export async function clearFaults(): Promise<void> {
  await fetch(`${inject('controlUrl')}/faults/clear`, { method: 'POST' });
}

interface NotifyOptions {
  /** Signing key; default the API key; null sends no signature. */
  key?: string | null;
  contentType?: string;
  /** The Worker's env; default the project's. */
  env?: WorkerEnv;
}

/** POSTs `body` to the Worker's receiver, signed like the ITSM API signs it. */
export async function notify(
  worker: Pick<EngineWorker, 'fetch'>,
  body: string,
  options: NotifyOptions = {},
): Promise<Response> {
  const key = options.key === undefined ? API_KEY : options.key;
  const headers: Record<string, string> = {
    'Content-Type': options.contentType ?? 'application/json',
  };
  if (key !== null) headers['X-Kloudless-Signature'] = await signBody(body, key);
  return request(worker, 'POST', '/webhooks/kloudless', { body, headers, env: options.env });
}

/** One request to the Worker's fetch handler. */
export async function request(
  worker: Pick<EngineWorker, 'fetch'>,
  method: string,
  path: string,
  init: { body?: string; headers?: Record<string, string>; env?: WorkerEnv; auth?: boolean } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.auth) headers.set('Authorization', `APIKey ${API_KEY}`);
  return worker.fetch(
    new Request(`http://worker.test${path}`, {
      method,
      headers,
      ...(init.body !== undefined && { body: init.body }),
    }),
    init.env ?? workerEnv,
    createExecutionContext(),
  );
}

let messageIds = 0;

/** A queue delivery of `bodies` (each `attempts` times tried) to the Worker; its ack/retry outcome. */
export async function deliver(
  worker: Pick<EngineWorker, 'queue'>,
  bodies: unknown[],
  options: { attempts?: number; ids?: string[]; env?: WorkerEnv } = {},
) {
  const messages = bodies.map((body, index) => ({
    id: options.ids?.[index] ?? `test-message-${++messageIds}`,
    timestamp: new Date(),
    attempts: options.attempts ?? 1,
    body,
  }));
  const batch = createMessageBatch(QUEUE_NAME, messages);
  const ctx = createExecutionContext();
  await worker.queue(batch, options.env ?? workerEnv, ctx);
  const result = await getQueueResult(batch, ctx);
  return { ids: messages.map((message) => message.id), result };
}

/** Every run record of the account in D1, newest first. */
export async function runsOf(account: number): Promise<RunRecord[]> {
  return pipelineStore.listRuns({ account, limit: 1000 });
}

/** Polls `check` until it returns something other than undefined/false; 15 s by default here. */
export function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  return pollUntil(check, what, timeoutMs);
}
