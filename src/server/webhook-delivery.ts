// Outgoing webhooks of the embedded ITSM API: the registration handshake and the signed
// notifications sent after events are appended. A notification carries only
// `{account, subscription}`; receivers pull the events themselves. Notifications for one
// (webhook, account) pair are coalesced: while one is in flight, any number of new events
// cause exactly one more. Failed deliveries are retried with exponential backoff and jitter.
// The POST itself goes through a WebhookSender: fetch by default, which runs everywhere; Node
// passes one on node:http with kept-alive connections (src/runtime/node-webhook-sender.ts).
import { type BodySigner, SIGNATURE_HEADER, signBody } from '../itsm/signature.js';
import type { ItsmStore, WebhookRecord } from '../storage/port.js';

export const WEBHOOK_USER_AGENT = 'kloudless-webhook/1.0';

export interface DeliveryOptions {
  /** Attempts per notification, the first included. Default 6. */
  attempts?: number;
  /** Delay before the first retry; doubles each time. Default 500 ms. */
  baseDelayMs?: number;
  /** Cap on one delay. Default 30 s. */
  maxDelayMs?: number;
  /** Per-request timeout. Default 10 s. */
  timeoutMs?: number;
}

export type DeliveryLog = (line: string) => void;

type Fetch = (input: string, init: RequestInit) => Promise<Response>;

/** One notification's POST, as the notifier makes it (signed, headers set). */
export interface WebhookRequest {
  url: string;
  body: string;
  headers: Readonly<Record<string, string>>;
  /**
   * The answer must begin within this many milliseconds; past it the request is abandoned (its
   * connection closed) and the send rejects with an error named `TimeoutError`.
   */
  timeoutMs: number;
}

/**
 * Sends one notification: resolves with the answer's status, whatever it is (redirects are not
 * followed; the answer's body is not read), and rejects on a network failure or the timeout.
 * Retries, backoff and what counts as delivered are the notifier's.
 */
export type WebhookSender = (request: WebhookRequest) => Promise<{ status: number }>;

/** The runtime-neutral sender: `fetch`, with an abort signal for the timeout. */
export const fetchWebhookSender: WebhookSender = async (request) => {
  const response = await fetch(request.url, {
    method: 'POST',
    body: request.body,
    redirect: 'manual',
    headers: request.headers,
    signal: AbortSignal.timeout(request.timeoutMs),
  });
  await response.body?.cancel();
  return { status: response.status };
};

export interface HandshakeResult {
  ok: boolean;
  /** Why the URL was refused, in a sentence. */
  reason?: string;
}

function describeFailure(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    if (error.name === 'TimeoutError' || error.name === 'AbortError') return 'timed out';
    // fetch puts the system error (ECONNREFUSED...) in `cause`; node:http throws it itself.
    const code = (error as { code?: unknown }).code;
    return (
      cause?.code ??
      (typeof code === 'string' ? code : undefined) ??
      cause?.message ??
      error.message
    );
  }
  return String(error);
}

/**
 * Before a URL is saved: POST an empty body, signed like a notification. The URL passes only by
 * answering 200 with the application id as the plain-text body.
 */
export async function webhookHandshake(
  url: string,
  options: { appId: string; apiKey: string; timeoutMs?: number; fetch?: Fetch },
): Promise<HandshakeResult> {
  const doFetch: Fetch = options.fetch ?? ((input, init) => fetch(input, init));
  try {
    const response = await doFetch(url, {
      method: 'POST',
      body: '',
      redirect: 'manual',
      headers: {
        'User-Agent': WEBHOOK_USER_AGENT,
        [SIGNATURE_HEADER]: await signBody('', options.apiKey),
      },
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    const text = (await response.text()).trim();
    if (response.status !== 200) {
      return { ok: false, reason: `${url} answered the handshake with status ${response.status}` };
    }
    if (text !== options.appId) {
      return {
        ok: false,
        reason: `${url} answered the handshake with ${JSON.stringify(text.slice(0, 80))} instead of the application id`,
      };
    }
    return { ok: true };
  } catch (error) {
    return {
      ok: false,
      reason: `${url} could not be reached for the handshake (${describeFailure(error)})`,
    };
  }
}

export interface WebhookNotifierOptions extends DeliveryOptions {
  store: ItsmStore;
  appId: string;
  apiKey: string;
  /** Signs each notification (signBody's contract); default WebCrypto's signBody. */
  sign?: BodySigner;
  /** Sends each notification; default fetchWebhookSender. */
  send?: WebhookSender;
  log?: DeliveryLog;
}

interface Slot {
  running: boolean;
  again: boolean;
}

export class WebhookNotifier {
  private readonly slots = new Map<string, Slot>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly sleepers = new Map<ReturnType<typeof setTimeout>, () => void>();
  private stopped = false;
  /** Notifications delivered (2xx), given up on, and attempts that failed. */
  readonly stats = { delivered: 0, abandoned: 0, failedAttempts: 0 };

  constructor(private readonly options: WebhookNotifierOptions) {}

  /** Schedules a notification of `account` to every registered webhook. Never throws. */
  notify(account: number): void {
    if (this.stopped) return;
    const task = this.options.store
      .listWebhooks(this.options.appId)
      .then((webhooks) => {
        for (const webhook of webhooks) this.schedule(webhook, account);
      })
      .catch((error) => this.log(`webhook: listing webhooks failed: ${describeFailure(error)}`));
    this.track(task);
  }

  /** Resolves once no notification is in flight or waiting for a retry. */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Stops scheduling and cancels waiting retries; in-flight requests finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const [timer, wake] of this.sleepers) {
      clearTimeout(timer);
      wake();
    }
    this.sleepers.clear();
    await this.idle();
  }

  private log(line: string): void {
    this.options.log?.(line);
  }

  private track(task: Promise<void>): void {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }

  private schedule(webhook: WebhookRecord, account: number): void {
    const key = `${webhook.id}:${account}`;
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { running: false, again: false };
      this.slots.set(key, slot);
    }
    if (slot.running) {
      slot.again = true;
      return;
    }
    slot.running = true;
    const current = slot;
    this.track(
      (async () => {
        do {
          current.again = false;
          await this.deliver(webhook, account);
        } while (current.again && !this.stopped);
        current.running = false;
        this.slots.delete(key);
      })(),
    );
  }

  private async deliver(webhook: WebhookRecord, account: number): Promise<void> {
    const attempts = this.options.attempts ?? 6;
    const body = JSON.stringify({ account, subscription: webhook.id });
    const signature = await (this.options.sign ?? signBody)(body, this.options.apiKey);
    const send = this.options.send ?? fetchWebhookSender;
    const request: WebhookRequest = {
      url: webhook.url,
      body,
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': WEBHOOK_USER_AGENT,
        [SIGNATURE_HEADER]: signature,
      },
      timeoutMs: this.options.timeoutMs ?? 10_000,
    };
    for (let attempt = 1; attempt <= attempts && !this.stopped; attempt++) {
      let failure: string;
      try {
        const { status } = await send(request);
        if (status >= 200 && status <= 299) {
          this.stats.delivered++;
          return;
        }
        failure = `status ${status}`;
      } catch (error) {
        failure = describeFailure(error);
      }
      this.stats.failedAttempts++;
      if (attempt === attempts || this.stopped) break;
      const delay = this.backoff(attempt);
      this.log(
        `webhook: ${webhook.url} (account ${account}) failed with ${failure}; retry ${attempt}/${attempts - 1} in ${delay} ms`,
      );
      await this.sleep(delay);
    }
    if (!this.stopped) {
      this.stats.abandoned++;
      this.log(
        `webhook: gave up notifying ${webhook.url} of account ${account} after ${attempts} attempts`,
      );
    }
  }

  private backoff(attempt: number): number {
    const base = this.options.baseDelayMs ?? 500;
    const cap = this.options.maxDelayMs ?? 30_000;
    const exponential = Math.min(cap, base * 2 ** (attempt - 1));
    // Full jitter on the upper half keeps retries from many accounts from marching in step.
    return Math.round(exponential / 2 + Math.random() * (exponential / 2));
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.sleepers.delete(timer);
        resolve();
      }, ms);
      this.sleepers.set(timer, resolve);
    });
  }
}
