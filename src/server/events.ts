// The activity log: `GET events?cursor=C` (events after C, oldest first) and `events/latest`.
// Cursors are event seqs as digit strings. A cursor older than the oldest retained event, or
// one this server never issued, is a 400: a receiver must never skip events silently. A page
// stops at the byte budget (page-budget.ts) too: `cursor` is after its last event and
// `remaining` counts the rest, so a client paging by cursor loses nothing.
import type { Hono } from 'hono';
import { jsonTextResponse } from '../itsm/json-response.js';
import type { StoredEvent } from '../storage/port.js';
import { type AppEnv, eventPageSize, type ServerDeps, wantsRaw } from './context.js';
import { badRequest, jsonResponse } from './errors.js';
import { fillPage, listJson } from './page-budget.js';
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
    const includeRaw = wantsRaw(c);
    // Read in chunks; each chunk reports how many events follow it and, in the same snapshot,
    // how far retention has trimmed the log.
    let after = cursor ?? 0;
    let remaining = 0;
    let trimmedThrough = 0;
    let expired = false;
    const page = await fillPage<StoredEvent>({
      limit: pageSize,
      budgetBytes: deps.maxPageBytes,
      read: async (skip, take) => {
        const chunk = await deps.store.listEvents(account, after, take);
        if (skip === 0) trimmedThrough = chunk.trimmedThrough;
        // Retention dropped events after the last one taken while the page was read: end the
        // page there; the next request, from its cursor, is told the cursor expired.
        if (skip > 0 && after < chunk.trimmedThrough) {
          expired = true;
          return { items: [], more: false };
        }
        remaining = chunk.remaining;
        after = chunk.events.at(-1)?.seq ?? after;
        return { items: chunk.events, more: chunk.remaining > 0 };
      },
      serialise: (events) => events.map((event) => JSON.stringify(renderEvent(event, includeRaw))),
    });
    // Checked against the same snapshot as the first chunk: events after the cursor were dropped.
    if (cursor !== null && cursor < trimmedThrough) {
      throw badRequest(
        `cursor ${cursorText} has expired: events after it are no longer retained (the log now starts after ${trimmedThrough}); start again without a cursor`,
      );
    }
    const last = page.items.at(-1)?.item.seq;
    return jsonTextResponse(
      200,
      listJson(
        {},
        page.items.map((entry) => entry.json),
        {
          cursor: String(last ?? Math.max(cursor ?? 0, trimmedThrough)),
          // Events read but left out for the byte budget are still to come.
          remaining: expired ? Math.max(remaining, 1) : remaining + page.leftOver,
          count: page.items.length,
          type: 'object_list',
          api: 'itsm',
        },
      ),
    );
  });
}
