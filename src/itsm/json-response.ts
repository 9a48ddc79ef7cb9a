// The one way both HTTP faces (the embedded ITSM API and the engine) answer in JSON: the contract
// (docs/api.md, "Errors") wants `Content-Type: application/json` exactly, with no
// charset suffix, because the official JS client ignores the body otherwise.

export const JSON_TYPE = 'application/json';

/** A JSON response whose Content-Type is exactly `application/json`. */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { ...headers, 'Content-Type': JSON_TYPE },
  });
}
