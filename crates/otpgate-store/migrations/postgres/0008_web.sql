-- The web interface (issue 11).
-- Sessions are signed cookies; signing out records the session id here until the session
-- would have expired anyway, so a copied cookie is dead on every node.
CREATE TABLE web_logout (
    sid        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
-- The dashboard's SMS counts per UTC day, gateway and outcome (delivered, failed,
-- skipped_breaker_open, failover; and refusals by a send limit or the toll-fraud guard under
-- gateway ''). Each node adds what it counted since its last flush.
CREATE TABLE sms_stat (
    day     TEXT   NOT NULL,
    gateway TEXT   NOT NULL,
    outcome TEXT   NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (day, gateway, outcome)
);
