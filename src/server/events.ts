// The activity log: `GET events?cursor=C` (events after C, oldest first) and `events/latest`.
// Cursors are event seqs as digit strings. A cursor older than the oldest retained event, or
// one this server never issued, is a 400: a receiver must never skip events silently.
import type { Hono } from 'hono';
import type { StoredEvent } from '../storage/port.js';
import { type AppEnv, eventPageSize, type ServerDeps, wantsRaw } from './context.js';
import { badRequest, jsonResponse } from './errors.js';
import { withoutRaw } from './render.js';

function renderEvent(event: StoredEvent, includeRaw: boolean): Record<string, unknown> {
  const strip = (m: Record<string, unknown>) => (includeRaw ? m : withoutRaw(m));
  return {
    id: String(event.seq),
    account: event.account,
    type: event.type,
    action: event.action,
    modified: event.modified,
    ip: event.ip,
    user_id: event.userId,
    api: 'itsm',
    metadata: strip(event.metadata),
    ...(event.previousMetadata && { previous_metadata: strip(event.previousMetadata) }),
  };
}

export function registerEventRoutes(app: Hono<AppEnv>, deps: ServerDeps): void {
  app.get('/v1/accounts/:account/events/latest', async (c) => {
    const { latest } = await deps.store.eventBounds(c.get('account'));
    return jsonResponse(200, { cursor: String(latest) });
  });

  app.get('/v1/accounts/:account/events', async (c) => {
    const account = c.get('account');
    const pageSize = eventPageSize(c);
    const cursorText = c.req.query('cursor');
    let cursor: number | null = null;
    if (cursorText !== undefined && cursorText !== '') {
      if (!/^\d{1,15}$/.test(cursorText)) {
        throw badRequest(
          `cursor must be a cursor returned by this API (a digit string), got ${JSON.stringify(cursorText)}`,
        );
      }
      cursor = Number(cursorText);
      const { globalLatest } = await deps.store.eventBounds(account);
      if (cursor > globalLatest) {
        throw badRequest(
          `cursor ${cursorText} was not issued by this server (its newest event is ${globalLatest}); start again without a cursor or from events/latest`,
        );
      }
    }
    const { events, remaining, trimmedThrough } = await deps.store.listEvents(
      account,
      cursor ?? 0,
      pageSize,
    );
    // Checked against the same snapshot as the page: events after the cursor were dropped.
    if (cursor !== null && cursor < trimmedThrough) {
      throw badRequest(
        `cursor ${cursorText} has expired: events after it are no longer retained (the log now starts after ${trimmedThrough}); start again without a cursor`,
      );
    }
    const includeRaw = wantsRaw(c);
    return jsonResponse(200, {
      objects: events.map((event) => renderEvent(event, includeRaw)),
      cursor: String(events.at(-1)?.seq ?? Math.max(cursor ?? 0, trimmedThrough)),
      remaining,
      count: events.length,
      type: 'object_list',
      api: 'itsm',
    });
  });
}
