// ServiceNow's error body, the one shape every failure of the Table API face answers with:
// `{"error":{"message","detail"},"status":"failure"}`. Handlers throw `TableApiError`; the face's
// error handler turns it (and anything unexpected, as a 500) into this body.

export type TableApiErrorCode =
  | 'SN_BAD_REQUEST'
  | 'SN_UNAUTHENTICATED'
  | 'SN_FORBIDDEN'
  | 'SN_NOT_FOUND'
  | 'SN_METHOD_NOT_ALLOWED'
  | 'SN_CONFLICT'
  | 'SN_PAYLOAD_TOO_LARGE'
  | 'SN_INTERNAL';

const STATUS: Record<TableApiErrorCode, number> = {
  SN_BAD_REQUEST: 400,
  SN_UNAUTHENTICATED: 401,
  SN_FORBIDDEN: 403,
  SN_NOT_FOUND: 404,
  SN_METHOD_NOT_ALLOWED: 405,
  SN_CONFLICT: 409,
  SN_PAYLOAD_TOO_LARGE: 413,
  SN_INTERNAL: 500,
};

export class TableApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: TableApiErrorCode,
    message: string,
    readonly detail: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'TableApiError';
    this.status = STATUS[code];
  }
}

export interface TableApiErrorBody {
  error: { message: string; detail: string | null };
  status: 'failure';
}

export function errorBody(error: TableApiError): TableApiErrorBody {
  return { error: { message: error.message, detail: error.detail }, status: 'failure' };
}

/** A bad parameter or body: ServiceNow answers these with a short message and a detail. */
export const invalidRequest = (message: string, detail: string) =>
  new TableApiError('SN_BAD_REQUEST', message, detail);

export const noRecord = (detail: string) =>
  new TableApiError('SN_NOT_FOUND', 'No Record found', detail);

export const notAuthenticated = (detail: string) =>
  new TableApiError('SN_UNAUTHENTICATED', 'User Not Authenticated', detail, {
    'WWW-Authenticate': 'BASIC realm="Service-now"',
  });

export const notAuthorized = (detail: string) =>
  new TableApiError('SN_FORBIDDEN', 'User Not Authorized', detail);
