// The client's transport to an API app in the same process (the engine all-in-one): the call goes
// through the app's own `fetch` (every route, middleware, auth check, validation and idempotency
// claim the same as over HTTP: one code path, not a second API), but without what a socket needs
// and an app in process does not: no web `Request` with its body stream and abort signal per
// call, and, for the app's JSON answers, no body stream to read back (json-response.ts keeps the
// text with the answer). Measured all-in-one, building those was a fifth of busy CPU
// (bench/in-process.ts). An answer made another way (an injected cut-off answer, see
// server/faults.ts) is read through its body as usual, so a broken body is still a network error.
import type { ItsmTransport, TransportAnswer, TransportRequest } from './client.js';
import { textOfJsonResponse } from './json-response.js';

/** What the transport needs of an app: Hono's `app.fetch`, called without env or context. */
export interface InProcessApp {
  fetch(request: Request): Response | Promise<Response>;
}

/** The answers the app makes, as a client reads them. */
export function createInProcessTransport(app: InProcessApp): ItsmTransport {
  return async (request: TransportRequest): Promise<TransportAnswer> => {
    const response = await app.fetch(new InProcessRequest(request) as unknown as Request);
    const text = textOfJsonResponse(response) ?? (await response.text());
    return { status: response.status, headers: response.headers, text };
  };
}

/**
 * Just enough headers for an app that reads them by name and walks them (Hono's `c.req.header`,
 * its body limit): names are case-insensitive, as on a socket.
 */
class InProcessHeaders {
  readonly #values = new Map<string, string>();

  constructor(headers: Record<string, string>) {
    for (const name in headers) this.#values.set(name.toLowerCase(), headers[name] as string);
  }
  get(name: string): string | null {
    return this.#values.get(name.toLowerCase()) ?? null;
  }
  has(name: string): boolean {
    return this.#values.has(name.toLowerCase());
  }
  forEach(callback: (value: string, name: string, parent: this) => void): void {
    for (const [name, value] of this.#values) callback(value, name, this);
  }
  entries(): IterableIterator<[string, string]> {
    return this.#values.entries();
  }
  keys(): IterableIterator<string> {
    return this.#values.keys();
  }
  values(): IterableIterator<string> {
    return this.#values.values();
  }
  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.#values.entries();
  }
}

/**
 * The parts of a web `Request` an app reads: url, method, headers, and the body as text or JSON.
 * The body's length goes in Content-Length (as a socket's request would carry it), so the body
 * limit is checked without reading a stream; the stream and the signal exist only if asked for.
 */
class InProcessRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: InProcessHeaders;
  readonly #text: string | undefined;
  #used = false;
  #signal: AbortSignal | undefined;

  constructor(request: TransportRequest) {
    this.url = request.url;
    this.method = request.method;
    this.#text = request.body;
    this.headers = new InProcessHeaders(
      request.body === undefined
        ? request.headers
        : { ...request.headers, 'content-length': String(utf8Length(request.body)) },
    );
  }

  /**
   * Apps mostly look at the body only to see that there is one (Hono's body limit): a stand-in
   * that makes the real stream when a reader is asked for, not one stream per call.
   */
  get body(): ReadableStream<Uint8Array> | null {
    if (this.#text === undefined) return null;
    return {
      getReader: () => {
        const bytes = this.#take();
        return new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(bytes);
            controller.close();
          },
        }).getReader();
      },
    } as ReadableStream<Uint8Array>;
  }
  get bodyUsed(): boolean {
    return this.#used;
  }
  get signal(): AbortSignal {
    this.#signal ??= new AbortController().signal;
    return this.#signal;
  }
  async text(): Promise<string> {
    this.#consume();
    return this.#text ?? '';
  }
  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.#take().buffer as ArrayBuffer;
  }
  async bytes(): Promise<Uint8Array> {
    return this.#take();
  }

  #take(): Uint8Array {
    this.#consume();
    return new TextEncoder().encode(this.#text ?? '');
  }
  #consume(): void {
    if (this.#used) throw new TypeError('the request body was already read');
    this.#used = true;
  }
}

/** Bytes of the UTF-8 encoding of `text`, without encoding it. */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
