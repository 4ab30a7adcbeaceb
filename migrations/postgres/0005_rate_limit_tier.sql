-- A key's rate-limit tier, named in the configuration's `[limits.tiers]`; NULL is the default tier.
ALTER TABLE api_keys ADD COLUMN rate_limit_tier TEXT;
