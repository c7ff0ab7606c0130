-- Tokens IMS did not issue (an identity provider's) carry no auth version; an auth change
-- (sessions revoked, disabled, roles or password changed) sets this cut-off instead, and such
-- tokens issued at or before it are refused.
ALTER TABLE users ADD COLUMN tokens_valid_after BIGINT NOT NULL DEFAULT 0;
