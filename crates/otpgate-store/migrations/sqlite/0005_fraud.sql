-- Destination prefixes the toll-fraud guard refuses (otpgate addition): blocked by an admin
-- or automatically when sends to the prefix spike without matching successful logins.
CREATE TABLE blocked_prefix (
    prefix     TEXT PRIMARY KEY,
    blocked_at BIGINT NOT NULL,
    source     TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT ''
);

-- When the token's last failed attempt was kept (for the optional verify back-off).
ALTER TABLE token ADD COLUMN last_fail_ms BIGINT NOT NULL DEFAULT 0;
