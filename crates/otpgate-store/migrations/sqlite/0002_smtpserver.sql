-- Central SMTP server definitions (privacyIDEA's /smtpserver), used by the SMTP SMS provider.
-- The password is sealed with the key ring (or empty).
CREATE TABLE smtpserver (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier  TEXT NOT NULL UNIQUE,
    server      TEXT NOT NULL,
    port        BIGINT NOT NULL DEFAULT 25,
    username    TEXT NOT NULL DEFAULT '',
    password    TEXT NOT NULL DEFAULT '',
    sender      TEXT NOT NULL DEFAULT '',
    tls         BIGINT NOT NULL DEFAULT 0,
    tls_verify  BIGINT NOT NULL DEFAULT 1,
    timeout     BIGINT NOT NULL DEFAULT 10,
    description TEXT NOT NULL DEFAULT '',
    enqueue_job BIGINT NOT NULL DEFAULT 0
);
