// All-in-one, the embedded API notifies the engine in the same process: a notification for the
// engine's own receiver URL is handed to its Receiver directly instead of crossing a loopback
// socket. Everything but the socket stays: the notifier signs the body and sets its headers, the
// receiver verifies that signature on the exact bytes, notes the account durably and answers,
// and the notifier retries a refusal (401, 503) as it would over HTTP. Notifications for any other
// URL (a webhook a user registered) go to the fallback sender. Over the socket, the API's delivery
// and the engine's reading of it were about a fifth of an all-in-one engine's busy CPU
// (bench/README.md).
import type { WebhookRequest, WebhookSender } from '../server/webhook-delivery.js';
import { type Receiver, SIGNATURE_HEADER } from './receiver.js';

export interface OwnDeliveryOptions {
  /**
   * The URL the engine registered for itself and its receiver, once it listens; null before
   * (every notification then goes to the fallback).
   */
  own: () => { url: string; receiver: Receiver } | null;
  /** Sends every other notification. */
  fallback: WebhookSender;
  log?: (line: string) => void;
}

const encoder = new TextEncoder();

export function ownDeliverySender(options: OwnDeliveryOptions): WebhookSender {
  const log = options.log ?? (() => {});
  return async (request: WebhookRequest) => {
    const own = options.own();
    if (own === null || request.url !== own.url) return options.fallback(request);
    try {
      const answer = await own.receiver.receive(
        encoder.encode(request.body),
        // The notifier (webhook-delivery.ts) names the signature by the same constant.
        request.headers[SIGNATURE_HEADER] ?? null,
        request.headers['Content-Type'] ?? null,
      );
      return { status: answer.status };
    } catch (error) {
      // What the HTTP layers answer for a receiver that threw (a bug): a 500, retried.
      log(`receiver: ERROR on a notification delivered in process: ${String(error)}`);
      return { status: 500 };
    }
  };
}
