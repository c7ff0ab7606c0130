-- Production: lines, products, customer orders, work orders and their execution, reasons,
-- documents, alert rules and alerts, and the database-backed queue.
-- Dates of the factory calendar are TEXT 'YYYY-MM-DD' (factory local time); instants are unix
-- seconds; booleans are BIGINT 0/1; every mutable row carries a version for If-Match.

CREATE TABLE lines (
    id          TEXT PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    -- JSON array of {"name","start","minutes","break_minutes"}; start is 'HH:MM' factory time.
    shifts      TEXT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE line_leaders (
    line_id  TEXT NOT NULL REFERENCES lines(id) ON DELETE CASCADE,
    user_id  TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (line_id, user_id)
);
CREATE INDEX line_leaders_user ON line_leaders(user_id);

CREATE TABLE products (
    id           TEXT PRIMARY KEY,
    sku          TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    -- JSON object: line kind -> ideal cycle time in milliseconds.
    cycle_times  TEXT NOT NULL,
    version      BIGINT NOT NULL DEFAULT 1,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE orders (
    id            TEXT PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE,
    customer      TEXT NOT NULL,
    product_id    TEXT NOT NULL REFERENCES products(id),
    quantity      BIGINT NOT NULL,
    due_date      TEXT NOT NULL,
    priority      BIGINT NOT NULL,
    cancelled_at  BIGINT,
    version       BIGINT NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX orders_due ON orders(due_date);

-- status: planned -> in_progress <-> paused -> completed, or cancelled (from planned or paused).
CREATE TABLE work_orders (
    id              TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL REFERENCES orders(id),
    stage           TEXT NOT NULL,
    line_id         TEXT NOT NULL REFERENCES lines(id),
    work_date       TEXT NOT NULL,
    shift           TEXT NOT NULL,
    sequence        BIGINT NOT NULL,
    quantity        BIGINT NOT NULL,
    ideal_cycle_ms  BIGINT NOT NULL,
    status          TEXT NOT NULL,
    good_qty        BIGINT NOT NULL DEFAULT 0,
    scrap_qty       BIGINT NOT NULL DEFAULT 0,
    published_at    BIGINT,
    started_at      BIGINT,
    completed_at    BIGINT,
    cancelled_at    BIGINT,
    version         BIGINT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX work_orders_slot ON work_orders(line_id, work_date, shift, sequence);
CREATE INDEX work_orders_order ON work_orders(order_id);
-- Open work (running, paused, planned) is a small slice of a year of history.
CREATE INDEX work_orders_status ON work_orders(status, line_id);
CREATE INDEX work_orders_date ON work_orders(work_date);

-- Every transition and report, timestamped; the execution history of a work order.
CREATE TABLE work_order_events (
    id             TEXT PRIMARY KEY,
    work_order_id  TEXT NOT NULL REFERENCES work_orders(id),
    kind           TEXT NOT NULL,
    at             BIGINT NOT NULL,
    actor_id       TEXT,
    from_status    TEXT,
    to_status      TEXT,
    detail         TEXT NOT NULL
);
CREATE INDEX work_order_events_wo ON work_order_events(work_order_id, at);

-- Output reports, attributed to the shift they fall in (work_date, shift) when written.
CREATE TABLE output_reports (
    id              TEXT PRIMARY KEY,
    work_order_id   TEXT NOT NULL REFERENCES work_orders(id),
    line_id         TEXT NOT NULL REFERENCES lines(id),
    work_date       TEXT NOT NULL,
    shift           TEXT NOT NULL,
    at              BIGINT NOT NULL,
    good            BIGINT NOT NULL,
    scrap           BIGINT NOT NULL,
    scrap_reason    TEXT,
    ideal_cycle_ms  BIGINT NOT NULL,
    actor_id        TEXT
);
-- Covering: a line's OEE over a month is read from the index alone.
CREATE INDEX output_reports_line ON output_reports(line_id, work_date, shift, good, scrap, ideal_cycle_ms);
CREATE INDEX output_reports_wo ON output_reports(work_order_id);

-- Stops: reported after the fact, or opened by a pause and closed by resume (ended_at NULL while open).
CREATE TABLE downtimes (
    id             TEXT PRIMARY KEY,
    line_id        TEXT NOT NULL REFERENCES lines(id),
    work_order_id  TEXT REFERENCES work_orders(id),
    reason_code    TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    ended_at       BIGINT,
    source         TEXT NOT NULL,
    note           TEXT NOT NULL DEFAULT '',
    actor_id       TEXT
);
CREATE INDEX downtimes_line ON downtimes(line_id, started_at);
CREATE INDEX downtimes_open ON downtimes(ended_at, line_id);
CREATE INDEX downtimes_wo ON downtimes(work_order_id);

-- kind: downtime | scrap
CREATE TABLE reasons (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    code        TEXT NOT NULL,
    label       TEXT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    version     BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL,
    UNIQUE (kind, code)
);

-- owner_type: line | order | work_order. Content lives in storage under storage_key.
CREATE TABLE documents (
    id            TEXT PRIMARY KEY,
    owner_type    TEXT NOT NULL,
    owner_id      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    storage_key   TEXT NOT NULL,
    uploaded_by   TEXT,
    created_at    BIGINT NOT NULL
);
CREATE INDEX documents_owner ON documents(owner_type, owner_id);

-- kind: line_down (threshold = minutes) | scrap_rate (threshold = percent) | order_at_risk.
CREATE TABLE alert_rules (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    line_id     TEXT REFERENCES lines(id) ON DELETE CASCADE,
    threshold   BIGINT NOT NULL,
    enabled     BIGINT NOT NULL DEFAULT 1,
    version     BIGINT NOT NULL DEFAULT 1,
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);

-- dedupe_key makes raising an alert idempotent: one alert per rule and occurrence.
CREATE TABLE alerts (
    id               TEXT PRIMARY KEY,
    rule_id          TEXT REFERENCES alert_rules(id) ON DELETE SET NULL,
    kind             TEXT NOT NULL,
    severity         TEXT NOT NULL,
    line_id          TEXT,
    order_id         TEXT,
    message          TEXT NOT NULL,
    dedupe_key       TEXT NOT NULL UNIQUE,
    raised_at        BIGINT NOT NULL,
    acknowledged_at  BIGINT,
    acknowledged_by  TEXT
);
CREATE INDEX alerts_raised ON alerts(raised_at);

-- The database-backed queue (IMS_QUEUE_URL unset). A received message is invisible until
-- visible_at; it is deleted once handled, and parked (dead) after too many receives.
CREATE TABLE queue_messages (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    body           TEXT NOT NULL,
    attributes     TEXT NOT NULL,
    visible_at     BIGINT NOT NULL,
    receive_count  BIGINT NOT NULL DEFAULT 0,
    dead           BIGINT NOT NULL DEFAULT 0,
    created_at     BIGINT NOT NULL
);
CREATE INDEX queue_messages_visible ON queue_messages(dead, visible_at);
