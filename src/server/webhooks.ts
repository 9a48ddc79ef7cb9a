// Webhook registration per application: list, register (after the handshake), get, delete.
// Only the application API key may manage them.
import type { Hono, MiddlewareHandler } from 'hono';
import { formatIsoDate } from '../itsm/schemas.js';
import type { WebhookRecord } from '../storage/port.js';
import { authenticate } from './auth.js';
import { type AppEnv, objectList, readJsonObject, type ServerDeps } from './context.js';
import { ApiError, badRequest, jsonResponse, notFound } from './errors.js';
import { webhookHandshake } from './webhook-delivery.js';

const toJson = (webhook: WebhookRecord) => ({ id: webhook.id, url: webhook.url });

export function validateWebhookUrl(url: unknown): string {
  if (typeof url !== 'string' || url.trim() === '') {
    throw badRequest('url is required: the http(s) address that will receive notifications');
  }
  let parsed: URL;
  try {
    parsed = new URL(url.trim());
  } catch {
    throw badRequest(`url is not a valid URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw badRequest(`url must use http or https, got ${parsed.protocol}`);
  }
  if (parsed.username || parsed.password) {
    // Not repeated back: the message names the host only.
    throw badRequest(
      `url must not carry a user name or password (${parsed.protocol}//…@${parsed.host}): notifications are signed with the application key, which is how a receiver knows them; put anything else it needs in the path`,
    );
  }
  return parsed.toString();
}

/** Registers a URL after a successful handshake (or returns it if already registered). */
export async function registerWebhook(
  deps: ServerDeps,
  url: string,
): Promise<{ webhook: WebhookRecord; created: boolean }> {
  const normalized = validateWebhookUrl(url);
  const existing = (await deps.store.listWebhooks(deps.appId)).find((w) => w.url === normalized);
  if (existing) return { webhook: existing, created: false };
  const handshake = await webhookHandshake(normalized, {
    appId: deps.appId,
    apiKey: deps.apiKey,
    ...(deps.handshakeTimeoutMs !== undefined && { timeoutMs: deps.handshakeTimeoutMs }),
  });
  if (!handshake.ok) throw badRequest(`webhook not registered: ${handshake.reason}`);
  return deps.store.addWebhook(deps.appId, normalized, formatIsoDate(new Date()));
}

export function registerWebhookRoutes(app: Hono<AppEnv>, deps: ServerDeps): void {
  const base = '/v1/applications/:app_id/webhooks';
  const appKeyOnly: MiddlewareHandler<AppEnv> = async (c, next) => {
    const credential = authenticate(deps, c.req.header('Authorization'));
    if (credential.kind !== 'app-key') {
      throw new ApiError(
        'forbidden',
        'webhooks are managed with the application API key, not a bearer token',
      );
    }
    if (c.req.param('app_id') !== deps.appId) {
      throw notFound(`no application ${JSON.stringify(c.req.param('app_id'))}`);
    }
    await next();
  };
  app.use(base, appKeyOnly);
  app.use(`${base}/*`, appKeyOnly);

  app.get(base, async (_c) => {
    const webhooks = (await deps.store.listWebhooks(deps.appId)).map(toJson);
    const total = webhooks.length;
    return jsonResponse(
      200,
      objectList(webhooks, { page: 1, pageSize: total, offset: 0, total }, 'application'),
    );
  });

  app.post(base, async (c) => {
    const body = await readJsonObject(c);
    const unknown = Object.keys(body).filter((key) => key !== 'url');
    if (unknown.length > 0)
      throw badRequest(`unknown field${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
    const { webhook, created } = await registerWebhook(deps, body.url as string);
    return jsonResponse(created ? 201 : 200, toJson(webhook));
  });

  const webhookId = (text: string | undefined): number => {
    if (!text || !/^\d{1,15}$/.test(text)) throw notFound(`no webhook ${JSON.stringify(text)}`);
    return Number(text);
  };

  app.get(`${base}/:id`, async (c) => {
    const webhook = await deps.store.getWebhook(deps.appId, webhookId(c.req.param('id')));
    if (!webhook) throw notFound(`no webhook ${c.req.param('id')} for application ${deps.appId}`);
    return jsonResponse(200, toJson(webhook));
  });

  app.delete(`${base}/:id`, async (c) => {
    const deleted = await deps.store.deleteWebhook(deps.appId, webhookId(c.req.param('id')));
    if (!deleted) throw notFound(`no webhook ${c.req.param('id')} for application ${deps.appId}`);
    return c.body(null, 204);
  });
}
