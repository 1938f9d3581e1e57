-- Send limits (otpgate addition): one counter per limit key and fixed time window. The
-- counters are shared by all nodes; each increment is one conditional upsert.
CREATE TABLE send_window (
    key          TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX send_window_start ON send_window (window_start);
