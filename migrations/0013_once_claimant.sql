-- The claims of one evaluation are given back by their claimant's prefix on every event that has
-- no stored plan. Without an index that read every once_per claim of the account, and claims
-- without a window (once per object, ever) are kept for good: the cost grew with each object.
CREATE INDEX engine_once_claimant ON engine_once (account, claimant);
