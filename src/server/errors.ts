// The one place the embedded API turns failures into the Kloudless error body. Handlers throw
// `ApiError`; `app.onError` maps it (and anything unexpected, as a 500) to JSON with the exact
// `Content-Type: application/json` that the official clients require.
import { jsonResponse } from '../itsm/json-response.js';
import { ERROR_CODES, type ErrorCode } from '../itsm/schemas.js';

export { jsonResponse } from '../itsm/json-response.js';

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERROR_CODES[code];
  }
}

export function errorResponse(error: ApiError, requestId: string): Response {
  return jsonResponse(
    error.status,
    { error_code: error.code, message: error.message, id: requestId, status_code: error.status },
    error.headers,
  );
}

export const badRequest = (message: string) => new ApiError('invalid_parameters', message);
export const notFound = (message: string) => new ApiError('not_found', message);
