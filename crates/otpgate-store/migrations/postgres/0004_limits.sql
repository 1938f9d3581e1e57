-- Send limits (otpgate addition): one counter per limit key and fixed time window, with the
-- limit it was counted against. The counters are shared by all nodes; one send increments all
-- its counters with one conditional upsert.
CREATE TABLE send_window (
    key          TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    max_count    BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX send_window_start ON send_window (window_start);
