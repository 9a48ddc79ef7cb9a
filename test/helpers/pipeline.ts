// The end-to-end pipeline fixture shared by the tests of order per object and of parking: an
// all-in-one engine on 127.0.0.1 whose rules call outside endpoints (`http` actions, allowed by
// host), the endpoints themselves as plain node:http servers (they stand for systems outside the
// project), and the API calls those tests make (create and update incidents, read the runs).
// Everything started is closed by the test file's cleanups, newest first.
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { StartEngineOptions } from '../../src/runtime/engine.js';
import { type CliProcess, startTestEngine, type TestEngine, writeRules } from './serve.js';

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary response shapes
type Json = any;

/** What a test file closes after each test, newest first. */
export type Cleanups = (() => Promise<unknown> | unknown)[];

/** Runs and empties the cleanups, newest first (a test file's afterEach). */
export async function runCleanups(cleanups: Cleanups): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
}

/** `track(cli)`: the CLI process is SIGKILLed by the cleanups (whatever the test left it in). */
export function killedByCleanups(cleanups: Cleanups): <T extends CliProcess>(cli: T) => T {
  return (cli) => {
    cleanups.push(() => cli.stop('SIGKILL'));
    return cli;
  };
}

/**
 * A rule that POSTs `{object, event}` (the incident's id and the event's) to `url` for every add
 * and update of an incident, or for those `when` selects; `extra` is more of the rule's YAML.
 */
export function callOutRule(options: {
  url: string;
  when?: string;
  extra?: string;
  description?: string;
}): string {
  return `
description: ${options.description ?? 'Tell an endpoint about every change of an incident.'}
on:
  type: incident
  events: [add, update]
${options.when === undefined ? '' : `when: ${options.when}\n`}${options.extra ?? ''}
then:
  - http:
      url: ${options.url}
      method: POST
      headers:
        Content-Type: application/json
      body:
        object: {var: object.id}
        event: {var: event.id}
`;
}

/** An outside endpoint served by `listener` on 127.0.0.1; its URL ends in /hook. */
export async function startHttpEndpoint(
  cleanups: Cleanups,
  listener: RequestListener,
): Promise<string> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

/**
 * The all-in-one engine with these rule files (relative path to YAML), allowed to call the hosts
 * of `endpoints`.
 */
export async function startEngineWithEndpoints(
  cleanups: Cleanups,
  rules: Record<string, string>,
  endpoints: readonly string[],
  overrides: Partial<StartEngineOptions> = {},
): Promise<TestEngine> {
  const written = writeRules(rules);
  cleanups.push(written.remove);
  const engine = await startTestEngine({
    rulesDir: written.dir,
    httpAllow: endpoints.map((url) => new URL(url).host),
    ...overrides,
  });
  cleanups.push(() => engine.close());
  return engine;
}

export async function createIncident(
  engine: TestEngine,
  account: number,
  body: object,
): Promise<Json> {
  const response = await engine.call('POST', `/v1/accounts/${account}/itsm/incidents`, { body });
  expect(response.status, response.text).toBe(201);
  return response.json;
}

export async function updateIncident(
  engine: TestEngine,
  account: number,
  id: string,
  body: object,
): Promise<void> {
  const response = await engine.call('PATCH', `/v1/accounts/${account}/itsm/incidents/${id}`, {
    body,
  });
  expect(response.status, response.text).toBe(200);
}

/** The runs `/runs` lists for a query (`account=1&outcome=done`), newest first. */
export async function listRuns(engine: TestEngine, query: string): Promise<Json[]> {
  const response = await engine.call('GET', `/runs?page_size=100&${query}`);
  expect(response.status, response.text).toBe(200);
  return response.json.objects;
}
