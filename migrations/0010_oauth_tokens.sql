-- The OAuth tokens of the Table API face (`POST /oauth_token.do`): kept in the store, so that a
-- restart of the server signs no client out (an instance keeps refresh tokens for 100 days) and
-- any process or isolate over the same database accepts a token another one issued. A row holds
-- the SHA-256 of its token (lower-case hex), never the token itself: a copy of the database
-- gives no one a usable token. `kind` keeps access and refresh tokens apart (neither stands for
-- the other); `account` and `user_name` name the user the token acts as, `client_id` the OAuth
-- client it was issued to; `expires_at` is milliseconds since the epoch. Expired rows are
-- deleted by a purge that runs now and then (the index), not by every request.
CREATE TABLE oauth_tokens (
  token_hash TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
  account INTEGER NOT NULL,
  user_name TEXT NOT NULL,
  client_id TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX oauth_tokens_by_expiry ON oauth_tokens (expires_at);
