-- Holds of Idempotency-Keys across servers that share one database (Worker isolates on D1) over
-- a remote system of record: the write lands upstream before the commit that stores its key, so
-- the server holding a key writes and another one sent the same key waits for its answer.
CREATE TABLE idempotency_holds (
  account INTEGER NOT NULL,
  key TEXT NOT NULL,
  holder TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (account, key)
);
