-- One record per SMS sent to a gateway (each attempt of a failover is its own SMS): what it
-- belongs to, where it went, and what became of it. `reference` is the unguessable id in its
-- delivery-receipt URL (`{dlr_url}`). States: sending (the gateway has not answered yet),
-- accepted, not_sent (the gateway refused it), delivered and failed (from a receipt).
-- `verified_at`: when the login it carried was answered (conversion).
CREATE TABLE sms_message (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    reference      TEXT NOT NULL UNIQUE,
    message_id     TEXT NOT NULL DEFAULT '',
    transaction_id TEXT NOT NULL DEFAULT '',
    serial         TEXT NOT NULL DEFAULT '',
    user_name      TEXT NOT NULL DEFAULT '',
    realm          TEXT NOT NULL DEFAULT '',
    gateway        TEXT NOT NULL,
    country        TEXT NOT NULL DEFAULT '',
    prefix         TEXT NOT NULL DEFAULT '',
    parts          BIGINT NOT NULL DEFAULT 1,
    state          TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT '',
    sent_at        BIGINT NOT NULL,
    accepted_at    BIGINT NOT NULL DEFAULT 0,
    done_at        BIGINT NOT NULL DEFAULT 0,
    verified_at    BIGINT NOT NULL DEFAULT 0,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX sms_message_tid ON sms_message (transaction_id);
CREATE INDEX sms_message_sent ON sms_message (sent_at);
