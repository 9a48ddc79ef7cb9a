// How a failure of the connector's ServiceNow instance answers on `/v1`: what the instance
// refused is the caller's to fix (400 naming the field, 403, 404, 429), what the instance could
// not do (down, slow, 5xx, the connector's own credentials refused) is a 503 to retry later.
import { ServiceNowError } from '../servicenow/client.js';
import { ApiError } from './errors.js';

/** The ApiError of a ServiceNowError, or null for any other error. */
export function upstreamApiError(error: unknown): ApiError | null {
  if (!(error instanceof ServiceNowError)) return null;
  const said = error.instanceMessage
    ? `${error.instanceMessage}${error.instanceDetail ? ` (${error.instanceDetail})` : ''}`
    : error.message;
  switch (error.code) {
    case 'SN_REFUSED':
      // Refused by the connector before any call (status null): its message is the whole story.
      if (error.status === null) return new ApiError('invalid_parameters', error.message);
      return new ApiError(
        'invalid_parameters',
        `the ServiceNow instance refused the request: ${said}`,
      );
    case 'SN_NOT_FOUND':
      return new ApiError('not_found', `the ServiceNow instance has no such record: ${said}`);
    case 'SN_FORBIDDEN':
      return new ApiError(
        'forbidden',
        `the ServiceNow instance does not allow the connector's user this: ${said}; give that user the roles it needs`,
      );
    case 'SN_RATE_LIMITED':
      return new ApiError(
        'rate_limit_exceeded',
        'the ServiceNow instance is rate-limiting the connector; retry later',
        { 'Retry-After': '5' },
      );
    default:
      return new ApiError(
        'service_unavailable',
        `the ServiceNow instance could not answer (${error.code}); retry later`,
        { 'Retry-After': '5' },
      );
  }
}
