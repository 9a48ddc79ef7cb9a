// Kept-alive node:http(s) connections for the engine's and the API's outgoing requests on Node:
// the ITSM client's transport to a separate API (node-transport.ts), the API's webhook
// notifications (node-webhook-sender.ts) and the rules' `http` actions (node-fetch.ts). Each
// owns one pair of agents (http and https) made here; what a request does with its answer is its
// own.
import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type RequestOptions,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/**
 * An idle connection is closed after this long, or a second before the peer's own
 * `Keep-Alive: timeout=N` (Node's agent reads it, and takes a 5 s hint with no margin), so that a
 * request is rarely sent on a connection the peer is closing. One that is anyway fails as a
 * network error, which each caller retries as its own rules say.
 */
export const IDLE_SOCKET_MS = 4_000;

export interface KeepAliveOptions {
  /** Connections per origin at most; further requests wait in the agent's queue. */
  maxSockets: number;
  /** How long an idle connection is kept (the peer's hint may shorten it); default 4 s. */
  idleMs?: number;
}

export interface KeepAliveAgents {
  /** node:http's or node:https's request, as the URL's scheme says, on the matching agent. */
  request(url: string | URL, options: Omit<RequestOptions, 'agent'>): ClientRequest;
  /** Connections open now (busy and idle, not being closed): tests check that none is leaked. */
  sockets(): number;
  /** Closes every connection; requests in flight fail. */
  close(): void;
}

/** `owner` names the caller in the error for a bad `maxSockets`. */
export function createKeepAliveAgents(owner: string, options: KeepAliveOptions): KeepAliveAgents {
  const { maxSockets } = options;
  if (!Number.isInteger(maxSockets) || maxSockets < 1) {
    throw new TypeError(
      `${owner}: maxSockets must be a whole number of at least 1, got ${maxSockets}`,
    );
  }
  const agentOptions = {
    keepAlive: true,
    maxSockets,
    maxFreeSockets: maxSockets,
    timeout: options.idleMs ?? IDLE_SOCKET_MS,
    // The most recently used connection first: a lull lets the others idle out.
    scheduling: 'lifo' as const,
  };
  const http = new HttpAgent(agentOptions);
  const https = new HttpsAgent(agentOptions);
  // A destroyed socket leaves the agent's lists only once it has closed (a later turn).
  const count = (agent: HttpAgent) => {
    let open = 0;
    for (const lists of [agent.sockets, agent.freeSockets]) {
      for (const list of Object.values(lists)) {
        for (const socket of list ?? []) if (!socket.destroyed) open++;
      }
    }
    return open;
  };
  return {
    request(url, requestOptions) {
      const secure = typeof url === 'string' ? url.startsWith('https:') : url.protocol === 'https:';
      return secure
        ? httpsRequest(url, { ...requestOptions, agent: https })
        : httpRequest(url, { ...requestOptions, agent: http });
    },
    sockets: () => count(http) + count(https),
    close() {
      http.destroy();
      https.destroy();
    },
  };
}

/** An answer's raw header list as web Headers (repeated names kept, as fetch keeps them). */
export function headersOf(raw: readonly string[]): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2)
    headers.append(raw[i] as string, raw[i + 1] as string);
  return headers;
}
