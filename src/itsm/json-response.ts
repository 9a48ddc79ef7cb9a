// The one way both HTTP faces (the embedded ITSM API and the engine) answer in JSON: the contract
// (docs/api.md, "Errors") wants `Content-Type: application/json` exactly, with no
// charset suffix, because the official JS client ignores the body otherwise.
//
// Every answer made here remembers its text (weakly, with the answer), so that a caller in the
// same process (the engine all-in-one, see in-process.ts) reads it without a body stream.

export const JSON_TYPE = 'application/json';

const texts = new WeakMap<Response, string>();

/** A JSON response whose Content-Type is exactly `application/json`. */
export function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return jsonTextResponse(status, JSON.stringify(body), headers);
}

/**
 * A response of JSON already serialised (a stored answer, a page joined from parts), or of no
 * body (`null`, for a 204); `Content-Type: application/json` whenever there is a body.
 */
export function jsonTextResponse(
  status: number,
  text: string | null,
  headers: Record<string, string> = {},
): Response {
  const response = new Response(text, {
    status,
    headers: text === null ? headers : { ...headers, 'Content-Type': JSON_TYPE },
  });
  texts.set(response, text ?? '');
  return response;
}

/** The text of an answer made by this module, read without its body; undefined for any other. */
export function textOfJsonResponse(response: Response): string | undefined {
  return texts.get(response);
}
