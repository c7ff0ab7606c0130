-- Accounts, sessions (refresh-token families), the auth change feed, login throttling, audit.
-- Conventions (both dialects): ids are UUID text, timestamps are Unix seconds in BIGINT,
-- flags are BIGINT 0/1 (the sqlx Any driver cannot decode SQLite booleans), roles are a
-- sorted comma-separated list of ADMIN / MANAGER / LINE_LEADER.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    password_hash   TEXT,
    roles           TEXT NOT NULL,
    email_verified  BIGINT NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    disabled        BIGINT NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    auth_version    BIGINT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- One row per login: the refresh-token family.
CREATE TABLE sessions (
    id                   TEXT PRIMARY KEY,
    user_id              TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at           BIGINT NOT NULL,
    absolute_expires_at  BIGINT NOT NULL,
    revoked_at           BIGINT,
    revoked_reason       TEXT
);
CREATE INDEX sessions_user ON sessions(user_id);

-- Refresh tokens, stored only as SHA-256 hashes. used_at is set when the token is rotated.
CREATE TABLE refresh_tokens (
    token_hash       TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    issued_at        BIGINT NOT NULL,
    idle_expires_at  BIGINT NOT NULL,
    used_at          BIGINT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens(session_id);

-- Feed of changes that invalidate access tokens (disable, roles, revoke, password); every
-- instance polls it to keep its revocation cache current.
CREATE TABLE auth_changes (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    session_id  TEXT,
    at          BIGINT NOT NULL
);
CREATE INDEX auth_changes_at ON auth_changes(at);

-- Login failure counters keyed by 'email:<address>' or 'ip:<address>'.
CREATE TABLE login_throttle (
    key           TEXT PRIMARY KEY,
    failures      BIGINT NOT NULL,
    window_start  BIGINT NOT NULL,
    locked_until  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          BIGINT NOT NULL,
    type        TEXT NOT NULL,
    actor_id    TEXT,
    subject_id  TEXT,
    ip          TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_events_type ON audit_events(type, id);
CREATE INDEX audit_events_actor ON audit_events(actor_id, id);
CREATE INDEX audit_events_subject ON audit_events(subject_id, id);

-- Rows updated first by transactions that must be serialised (see Db::lock).
CREATE TABLE app_locks (
    name  TEXT PRIMARY KEY,
    n     BIGINT NOT NULL
);
INSERT INTO app_locks (name, n) VALUES ('admins', 0);
