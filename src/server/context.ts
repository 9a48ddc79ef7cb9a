// What every route of the embedded API shares: its dependencies and the per-request variables
// set by the auth middleware, plus the small request helpers (JSON body, paging, raw flag).
import type { Context } from 'hono';
import type { TextHasher } from '../itsm/signature.js';
import type { ItsmStore } from '../storage/port.js';
import { badRequest } from './errors.js';
import type { KeyRetention } from './key-retention.js';
import type { WebhookNotifier } from './webhook-delivery.js';

export interface BearerToken {
  account: number;
  /** Recorded as `user_id` on events this token causes. */
  userId?: string;
}

export interface ServerDeps {
  store: ItsmStore;
  apiKey: string;
  appId: string;
  tokens: ReadonlyMap<string, BearerToken>;
  publicUrl: string | undefined;
  maxBodyBytes: number;
  /** Byte budget of a page of events or objects (page-budget.ts). */
  maxPageBytes: number;
  eventRetention: number;
  /** Idempotency-Key records while remembered, and the purge of forgotten ones. */
  keys: KeyRetention;
  /** Hex SHA-256 of request fingerprints (Idempotency-Key); node:crypto on Node. */
  sha256Hex: TextHasher;
  notifier: WebhookNotifier;
  /** Timeout of the registration handshake (the delivery timeout). */
  handshakeTimeoutMs: number | undefined;
  clientIp: (c: Context) => string | null;
  log: (line: string) => void;
}

export type AppEnv = {
  Variables: {
    requestId: string;
    account: number;
    /** The user a request acts as (Bearer token's user or X-Kloudless-As-User), for events. */
    actor: string | null;
    /** True when the request authenticated with the application API key. */
    isAppKey: boolean;
  };
};

export type AppContext = Context<AppEnv>;

export function baseUrlOf(deps: ServerDeps, c: Context): string {
  return (deps.publicUrl ?? new URL(c.req.url).origin).replace(/\/+$/, '');
}

export function wantsRaw(c: Context): boolean {
  return c.req.header('X-Kloudless-Raw-Data')?.trim().toLowerCase() === 'true';
}

/** The request body as a JSON object; a 400 for anything else. */
export async function readJsonObject(c: Context): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === '')
    throw badRequest('the request body must be a JSON object, got an empty body');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw badRequest(`the request body is not valid JSON: ${(error as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest(
      `the request body must be a JSON object, got ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
    );
  }
  return value as Record<string, unknown>;
}

function integerParam(
  c: Context,
  name: string,
  min: number,
  max: number,
  fallback: number,
): number {
  const text = c.req.query(name);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw badRequest(
      `${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

/**
 * `page` is a page number (1-based) or a `next_page` token `offset:N` that a shortened page
 * handed out; either way the page starts at `offset`.
 */
export function pageParams(c: Context): {
  page: number | string;
  pageSize: number;
  offset: number;
} {
  const pageSize = integerParam(c, 'page_size', 1, 1000, 10);
  const text = c.req.query('page');
  const token = text === undefined ? null : /^offset:(\d{1,15})$/.exec(text);
  if (token) return { page: text as string, pageSize, offset: Number(token[1]) };
  if (text !== undefined && !/^[1-9]\d{0,15}$/.test(text)) {
    throw badRequest(
      `page must be a page number (1, 2, ...) or a next_page value this API returned (offset:N), got ${JSON.stringify(text)}`,
    );
  }
  const page = integerParam(c, 'page', 1, Number.MAX_SAFE_INTEGER, 1);
  return { page, pageSize, offset: (page - 1) * pageSize };
}

/**
 * `next_page` after the objects from `offset` to `offset + count`: null at the end, the page
 * number when the next object starts a page of `pageSize`, else an `offset:N` token (a page the
 * byte budget shortened), so that a client following next_page never misses an object nor sees
 * one twice.
 */
export function nextPageAfter(offset: number, count: number, pageSize: number, total: number) {
  const next = offset + count;
  if (next >= total || count === 0) return null;
  return next % pageSize === 0 ? next / pageSize + 1 : `offset:${next}`;
}

export function eventPageSize(c: Context): number {
  return integerParam(c, 'page_size', 1, 1000, 100);
}

/** The object_list envelope of a page: the objects from `offset` on. */
export function objectList(
  objects: unknown[],
  paging: { page: number | string; pageSize: number; offset: number; total: number },
  api: string,
) {
  return {
    total: paging.total,
    count: objects.length,
    page: paging.page,
    next_page: nextPageAfter(paging.offset, objects.length, paging.pageSize, paging.total),
    objects,
    type: 'object_list',
    api,
  };
}
