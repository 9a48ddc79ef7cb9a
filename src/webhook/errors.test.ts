// The engine's error shape: the body and exact Content-Type of every mapped error, and the
// onError handler's treatment of expected errors, Hono's own, and surprises (500, logged, not leaked).
import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import {
  createEngineErrorHandler,
  EngineHttpError,
  errorResponse,
  handleEngineNotFound,
} from './errors.js';

function appThrowing(error: Error) {
  const logs: string[] = [];
  const app = new Hono();
  app.onError(createEngineErrorHandler((line) => logs.push(line)));
  app.notFound(handleEngineNotFound);
  app.get('/boom', () => {
    throw error;
  });
  return { app, logs };
}

describe('errorResponse', () => {
  it.each([
    [new EngineHttpError(400, 'invalid_parameters', 'bad page_size')],
    [new EngineHttpError(401, 'unauthorized', 'no key')],
    [new EngineHttpError(404, 'not_found', 'no run 9')],
    [new EngineHttpError(405, 'method_not_allowed', 'use POST', { Allow: 'POST' })],
    [new EngineHttpError(413, 'payload_too_large', 'too big')],
    [new EngineHttpError(500, 'internal_error', 'oops')],
    [new EngineHttpError(503, 'unavailable', 'queue down')],
  ])('renders $errorCode as the Kloudless error body with status $status', async (error) => {
    const response = errorResponse(error);

    expect(response.status).toBe(error.status);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({
      error_code: error.errorCode,
      message: error.message,
      status_code: error.status,
    });
  });

  it('carries the headers of the error', () => {
    const response = errorResponse(
      new EngineHttpError(405, 'method_not_allowed', 'use POST', { Allow: 'POST' }),
    );

    expect(response.headers.get('allow')).toBe('POST');
  });

  it('ties the status to the code at compile time', () => {
    // @ts-expect-error 404 is not the status of invalid_parameters
    const mismatched = new EngineHttpError(404, 'invalid_parameters', 'x');
    expect(mismatched.errorCode).toBe('invalid_parameters');
  });
});

describe('the onError handler', () => {
  it('maps an EngineHttpError to its body without logging', async () => {
    const { app, logs } = appThrowing(new EngineHttpError(400, 'invalid_parameters', 'bad at'));

    const response = await app.request('/boom');

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({
      error_code: 'invalid_parameters',
      message: 'bad at',
      status_code: 400,
    });
    expect(logs).toEqual([]);
  });

  it("keeps the status and message of Hono's HTTPException when the engine has a code for it", async () => {
    const { app } = appThrowing(new HTTPException(413, { message: 'body too large' }));

    const response = await app.request('/boom');

    expect(response.status).toBe(413);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({
      error_code: 'payload_too_large',
      message: 'body too large',
      status_code: 413,
    });
  });

  it.each([
    ['an unexpected error', new Error('database password is hunter2')],
    [
      'an HTTPException of a status the engine has no code for',
      new HTTPException(418, { message: 'teapot secret' }),
    ],
  ])('answers %s with a 500 that does not leak its message, and logs it', async (_name, error) => {
    const { app, logs } = appThrowing(error);

    const response = await app.request('/boom?token=abc');

    expect(response.status).toBe(500);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({
      error_code: 'internal_error',
      message: 'internal error: the engine logged the details',
      status_code: 500,
    });
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(
      new RegExp(`^engine: unexpected error on GET /boom: .*${error.message}`),
    );
    expect(logs[0]).not.toContain('token=abc');
  });

  it('answers an unknown route with a 404 in the same shape', async () => {
    const { app } = appThrowing(new Error('unused'));

    const response = await app.request('/nowhere', { method: 'DELETE' });

    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error_code: 'not_found',
      message: 'no route DELETE /nowhere on the engine',
      status_code: 404,
    });
  });
});
