-- Event handlers (privacyIDEA's /event) and the durable outbox of the notifications they
-- produce. Options and conditions are JSON objects of strings (privacyIDEA keeps them in two
-- side tables; one row per handler keeps the per-request lookup to one query).
CREATE TABLE eventhandler (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    events        TEXT NOT NULL,
    handlermodule TEXT NOT NULL,
    action        TEXT NOT NULL,
    position      TEXT NOT NULL DEFAULT 'post',
    ordering      BIGINT NOT NULL DEFAULT 0,
    active        BIGINT NOT NULL DEFAULT 1,
    options       TEXT NOT NULL DEFAULT '{}',
    conditions    TEXT NOT NULL DEFAULT '{}'
);

-- One row per notification. status: pending -> sending -> sent, or back to pending with a
-- later next_at after a failed attempt, or dead (with last_error) when it cannot be sent,
-- is too old, or was interrupted while sending. dedupe_key makes the insert idempotent.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    dedupe_key   TEXT NOT NULL UNIQUE,
    handler_id   BIGINT NOT NULL,
    handler_name TEXT NOT NULL,
    event        TEXT NOT NULL,
    channel      TEXT NOT NULL,
    config       TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    subject      TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL,
    status       TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    updated_at   BIGINT NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    delivered_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX outbox_due ON outbox (status, next_at);

-- Contact data of internal admins, for notifications "To: internal admin".
ALTER TABLE admin ADD COLUMN email TEXT NOT NULL DEFAULT '';
ALTER TABLE admin ADD COLUMN mobile TEXT NOT NULL DEFAULT '';
