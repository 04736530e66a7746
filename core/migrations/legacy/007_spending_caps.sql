-- Spending caps (issue 13): a server's own daily cap, set by its moderators and bounded by the
-- operator's SERVER_DAILY_SECONDS_MAX (NULL: the operator's bound, or none).
ALTER TABLE guild_settings ADD COLUMN server_daily_seconds INTEGER
    CHECK (server_daily_seconds IS NULL OR server_daily_seconds > 0);

-- What a day cost, for the bot's budget and a server's cap, is the sum of the reserve and
-- refund rows of that day (grants and resets move a member's allowance, not the spending).
-- Covering indexes: the sums inside every reservation read the index alone.
CREATE INDEX ledger_spend_by_day ON quota_ledger (day, kind, seconds);
DROP INDEX ledger_by_guild_day;
CREATE INDEX ledger_spend_by_guild_day ON quota_ledger (guild_id, day, kind, seconds);
