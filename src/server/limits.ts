// The embedded API's default limits, in a module of their own (no imports) so that the command
// line can print them in `--help` and flag defaults without loading the server and Hono.

/** Largest request body the API accepts by default; larger ones get 413. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/** Events kept per account by default; cursors older than that expire. */
export const DEFAULT_EVENT_RETENTION = 10_000;
