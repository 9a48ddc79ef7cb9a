// Byte-bounded pages: `GET /events` and the object lists stop adding items once the serialised
// page would pass a byte budget, so that a page of large objects (1,000 incidents of 1 MB each)
// can neither exhaust the server's memory nor pass the longest string a JavaScript engine can
// build. A page always holds at least one item: a single item larger than the budget is still
// served whole. Items are read from the store in small chunks sized from what has been read so
// far, so the server never loads a whole page_size of large items to throw most of them away.

/** Default byte budget of one page's items (serialised JSON, UTF-8): 8 MiB. */
export const DEFAULT_MAX_PAGE_BYTES = 8 * 1024 * 1024;

/** First chunk read from the store; later chunks are sized from the average item seen. */
const FIRST_CHUNK = 4;
const MAX_CHUNK = 200;

/** UTF-8 length of a string, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff) {
      // A surrogate pair: 2 UTF-16 units, 4 UTF-8 bytes.
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
}

export interface PageChunk<T> {
  items: T[];
  /** False when the store has nothing after this chunk (no need to ask again). */
  more: boolean;
}

export interface FilledPage<T> {
  /** The items of the page, in order, each with its JSON text. */
  items: { item: T; json: string }[];
  /** Items read from the store but left out because the budget was reached. */
  leftOver: number;
  /** True when the page stopped at the byte budget rather than at page_size or the end. */
  bounded: boolean;
}

/**
 * Reads items chunk by chunk (`read(skip, take)` returns the next `take` items after the first
 * `skip` of this page) and serialises them until `limit` items, the end, or `budgetBytes` (the
 * sum of the items' JSON plus one separator byte each); the first item is always taken. `read`
 * may end the page early by returning `more: false`.
 */
export async function fillPage<T>(options: {
  limit: number;
  budgetBytes: number;
  read: (skip: number, take: number) => Promise<PageChunk<T>>;
  serialise: (items: T[]) => Promise<string[]> | string[];
}): Promise<FilledPage<T>> {
  const { limit, budgetBytes } = options;
  const items: { item: T; json: string }[] = [];
  let used = 0;
  for (;;) {
    const average = items.length > 0 ? Math.max(1, used / items.length) : 0;
    const wanted =
      items.length === 0 ? FIRST_CHUNK : Math.floor((budgetBytes - used) / average) + 1;
    const take = Math.max(1, Math.min(limit - items.length, MAX_CHUNK, wanted));
    const chunk = await options.read(items.length, take);
    const texts = await options.serialise(chunk.items);
    for (let i = 0; i < chunk.items.length; i++) {
      const json = texts[i] as string;
      const size = utf8Length(json) + 1;
      if (items.length > 0 && used + size > budgetBytes) {
        return { items, leftOver: chunk.items.length - i, bounded: true };
      }
      items.push({ item: chunk.items[i] as T, json });
      used += size;
    }
    if (!chunk.more || chunk.items.length < take || items.length >= limit) {
      return { items, leftOver: 0, bounded: false };
    }
  }
}

/** `{...head, "objects": [items], ...tail}` as JSON text, without serialising the items again. */
export function listJson(
  head: Record<string, unknown>,
  items: readonly string[],
  tail: Record<string, unknown>,
): string {
  const open = JSON.stringify(head).slice(0, -1);
  const close = JSON.stringify(tail).slice(1);
  const objects = `"objects":[${items.join(',')}]`;
  const before = open === '{' ? open : `${open},`;
  const after = close === '}' ? close : `,${close}`;
  return `${before}${objects}${after}`;
}
