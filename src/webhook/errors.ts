// The engine's one HTTP error shape, the same body as the ITSM API's errors
// (`{"error_code","message","status_code"}`, Content-Type exactly `application/json`), and the one
// place that maps failures of the engine's routes to it. Routes throw or return `EngineHttpError`;
// anything else becomes a 500 whose message stays in the log, never in the response.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { jsonResponse } from '../itsm/json-response.js';

export { jsonResponse } from '../itsm/json-response.js';

export const ENGINE_ERROR_CODES = {
  invalid_parameters: 400,
  unauthorized: 401,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  internal_error: 500,
  unavailable: 503,
} as const;
export type EngineErrorCode = keyof typeof ENGINE_ERROR_CODES;

// The official Kloudless JS client ignores error bodies whose Content-Type carries a charset.

/**
 * An expected HTTP failure. The status is written out at the throw site for the reader, and
 * the type ties it to the code: `new EngineHttpError(404, 'invalid_parameters', ...)` does not compile.
 */
export class EngineHttpError<C extends EngineErrorCode = EngineErrorCode> extends Error {
  readonly status: (typeof ENGINE_ERROR_CODES)[C];
  readonly errorCode: C;
  readonly headers: Record<string, string>;

  constructor(
    status: (typeof ENGINE_ERROR_CODES)[C],
    errorCode: C,
    message: string,
    headers: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'EngineHttpError';
    this.status = status;
    this.errorCode = errorCode;
    this.headers = headers;
  }
}

/** The JSON body of an error answer: `{error_code, message, status_code}`. */
export function errorPayload(error: EngineHttpError) {
  return { error_code: error.errorCode, message: error.message, status_code: error.status };
}

export function errorResponse(error: EngineHttpError): Response {
  return jsonResponse(error.status, errorPayload(error), error.headers);
}

const CODE_OF_STATUS = new Map<number, EngineErrorCode>(
  Object.entries(ENGINE_ERROR_CODES).map(([code, status]) => [status, code as EngineErrorCode]),
);

/** The answer to an unexpected failure: the details go to the log, never to the sender. */
export function internalError(): EngineHttpError {
  return new EngineHttpError(
    500,
    'internal_error',
    'internal error: the engine logged the details',
  );
}

/**
 * A Hono `onError` handler that logs with `log`. Hono's own HTTPException (thrown by its
 * middleware) keeps its status when the engine has a code for it, so clients still get one shape.
 */
export function createEngineErrorHandler(
  log: (line: string) => void,
): (err: Error, c: Context) => Response {
  return (err, c) => {
    if (err instanceof EngineHttpError) return errorResponse(err);
    if (err instanceof HTTPException) {
      const code = CODE_OF_STATUS.get(err.status);
      if (code && code !== 'internal_error') {
        return errorResponse(new EngineHttpError(ENGINE_ERROR_CODES[code], code, err.message));
      }
    }
    // The path without its query: a query string may carry something that should not be logged.
    log(
      `engine: unexpected error on ${c.req.method} ${new URL(c.req.url).pathname}: ${err.stack ?? err.message}`,
    );
    return errorResponse(internalError());
  };
}

/** The `onError` handler of the engine's app, logging to the console (Node and Workers alike). */
export const handleEngineError = createEngineErrorHandler((line) => console.error(line));

/** A Hono `notFound` handler answering in the same error shape. */
export function handleEngineNotFound(c: Context): Response {
  return errorResponse(
    new EngineHttpError(
      404,
      'not_found',
      `no route ${c.req.method} ${new URL(c.req.url).pathname} on the engine`,
    ),
  );
}
