-- One-time codes, reset tokens and the outbox (mail and background jobs).

-- At most one live code per user and purpose; only a keyed hash (HMAC-SHA256 with OTP_PEPPER) of
-- the code is stored.
CREATE TABLE one_time_codes (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL,
    code_hash   TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    attempts    BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, purpose)
);

-- Short-lived, single-use tokens handed out by verify-otp for a password reset (SHA-256 only).
CREATE TABLE reset_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX reset_tokens_user ON reset_tokens(user_id);

-- The outbox: side effects written in the same transaction as their cause, delivered by a worker.
-- kind 'mail': payload is the encrypted message (AES-256-GCM, key derived from OTP_PEPPER), wiped
-- once sent. kind 'code_request': payload is {"email","purpose"}; the worker decides whether a code
-- is due, so the request handler does the same work whether or not the account exists.
-- status: pending -> sent | failed; a claimed row carries a lease (lease_until) while it is worked.
CREATE TABLE outbox (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    template         TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT NOT NULL DEFAULT 0,
    last_error       TEXT,
    created_at       BIGINT NOT NULL,
    done_at          BIGINT
);
CREATE INDEX outbox_due ON outbox(status, next_attempt_at);
