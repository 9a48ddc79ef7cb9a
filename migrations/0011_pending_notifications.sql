-- The notifications of each account not yet drained, by the time each was noted, so that the drain
-- lag counts from the oldest of them. One time per account was not enough: the newest time made a
-- busy account read as caught up while its first waiting notification aged, and a notification
-- that came in while a drain ran was covered by that drain's end although the drain had read its
-- last page before it.
-- A drain page that reaches the end of the log removes the notes older than the page's request;
-- a note in the same millisecond stays (the page may not hold its event). A page that does not
-- reach the end keeps the oldest note older than its request and removes the others, which any
-- later page reaching the end covers: an account keeps one note plus those of its page in hand.
CREATE TABLE pipeline_notifications (
  account INTEGER NOT NULL,
  at INTEGER NOT NULL,
  PRIMARY KEY (account, at)
);
-- An account counted as pending before this migration keeps its (newest) notification time.
INSERT INTO pipeline_notifications (account, at)
  SELECT account, notified_at FROM pipeline_accounts
  WHERE notified_at IS NOT NULL AND (drained_at IS NULL OR notified_at >= drained_at);
