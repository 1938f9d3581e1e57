-- privacyIDEA's RADIUS server definitions (/radiusserver), for the RADIUS pass-through of
-- the authentication policy passthru=<identifier>. The secret is sealed with the key ring.
CREATE TABLE radiusserver (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    identifier  TEXT NOT NULL UNIQUE,
    server      TEXT NOT NULL,
    port        BIGINT NOT NULL DEFAULT 1812,
    secret      TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    dictionary  TEXT NOT NULL DEFAULT '',
    retries     BIGINT NOT NULL DEFAULT 3,
    timeout     BIGINT NOT NULL DEFAULT 5
);
