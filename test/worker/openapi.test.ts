// The Worker describes its HTTP API as Node's `itsm-rules serve --api-url` does: GET /openapi.json,
// without credentials, lists the engine's routes and none of the embedded API's (the Worker always
// acts through a real ITSM API). The route-for-route comparison runs on Node (test/docs).
import { describe, expect, it } from 'vitest';
import { type Json, newWorker, request } from './helpers.js';

describe('GET /openapi.json on the Worker', () => {
  it("answers the engine's OpenAPI document without credentials", async () => {
    const response = await request(newWorker(), 'GET', '/openapi.json');
    expect(response.status).toBe(200);
    const doc = (await response.json()) as Json;
    expect(doc.openapi).toBe('3.1.0');
    const paths = Object.keys(doc.paths);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/webhooks/kloudless',
        '/runs',
        '/runs/{id}',
        '/admin/schedules/run',
      ]),
    );
    expect(paths.filter((path) => path.startsWith('/v1'))).toEqual([]);
  });
});
