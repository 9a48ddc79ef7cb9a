// The engine's own webhook registration with a separate ITSM API (`serve --api-url`): at start it
// registers its receiver as the application's webhook (the API's handshake reaches the receiver,
// so the engine must already listen), reusing a registration of the same URL, and at a clean
// shutdown it removes it. A registration that fails (API down, key refused) is logged and tried
// again with backoff: the engine keeps serving meanwhile (a drain at start and the parked-object
// timer still catch up), it does not crash over an API that is late to come up.
import { ItsmApiError, type ItsmClient } from '../itsm/client.js';

export interface SelfRegistrationOptions {
  client: ItsmClient;
  appId: string;
  /** The receiver's URL as the API reaches it (`https://engine.example.com/webhooks/kloudless`). */
  receiverUrl: string;
  log: (line: string) => void;
  /** First wait after a failure, doubled each time up to `maxDelayMs`; default 1 s and 60 s. */
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface SelfRegistration {
  /** Resolves once registered (or stopped first). */
  readonly registered: Promise<void>;
  /** The webhook's id at the API, once registered. */
  webhookId(): string | null;
  /** Stops retrying and removes the registration, if any; never throws (it is logged). */
  stop(): Promise<void>;
}

/** Why a call failed, in words that say what to do. */
function describeFailure(error: unknown, apiUrlHint: string): string {
  if (error instanceof ItsmApiError) {
    const detail = error.body?.message ?? error.message;
    if (error.status === 401 || error.status === 403) {
      return `the API refused the application key (${error.status}: ${detail}); check --api-key`;
    }
    if (error.status === 404) {
      return `the API answered 404 (${detail}); check --app-id and ${apiUrlHint}`;
    }
    return `the API answered ${error.status}: ${detail}`;
  }
  return error instanceof Error ? error.message : String(error);
}

export function startSelfRegistration(options: SelfRegistrationOptions): SelfRegistration {
  const { client, log, receiverUrl } = options;
  const base = `applications/${encodeURIComponent(options.appId)}/webhooks`;
  const baseDelay = options.baseDelayMs ?? 1_000;
  const maxDelay = options.maxDelayMs ?? 60_000;
  let id: string | null = null;
  let stopped = false;
  let wake: (() => void) | null = null;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = null;
        resolve();
      }
      wake = done;
    });

  const registered = (async () => {
    for (let attempt = 1, delay = baseDelay; !stopped; attempt++) {
      try {
        // The API answers 201 for a new registration and 200 with the existing one for a URL
        // already registered (by an earlier run that did not shut down cleanly): both are ours.
        const answer = await client.request({
          method: 'POST',
          path: base,
          body: { url: receiverUrl },
        });
        const webhook = answer.body as { id?: unknown; url?: unknown };
        id = String(webhook.id);
        if (stopped) break;
        log(
          `webhook: receiver ${answer.status === 201 ? 'registered' : 'already registered'} with the API as webhook ${id}: ${receiverUrl}`,
        );
        return;
      } catch (error) {
        if (stopped) return;
        log(
          `webhook: registering ${receiverUrl} with the API failed (attempt ${attempt}): ${describeFailure(error, '--api-url')}; retrying in ${(delay / 1000).toFixed(1)} s`,
        );
        await sleep(delay);
        delay = Math.min(delay * 2, maxDelay);
      }
    }
  })();

  return {
    registered,
    webhookId: () => id,
    async stop() {
      stopped = true;
      wake?.();
      await registered;
      if (id === null) return;
      try {
        await client.request({ method: 'DELETE', path: `${base}/${encodeURIComponent(id)}` });
        log(`webhook: removed webhook ${id} (${receiverUrl}) from the API`);
      } catch (error) {
        // Already gone counts as removed; anything else is left for the next start to reuse.
        if (error instanceof ItsmApiError && error.status === 404) return;
        log(
          `webhook: could not remove webhook ${id} (${receiverUrl}) from the API: ${describeFailure(error, '--api-url')}; the next start reuses it`,
        );
      }
      id = null;
    },
  };
}
