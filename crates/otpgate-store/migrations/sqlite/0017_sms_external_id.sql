-- The gateway's own id of an SMS, where its receipts name the SMS by that instead of by our
-- reference (SMPP: the message_id of submit_sm_resp, named again by deliver_sm receipts).
ALTER TABLE sms_message ADD COLUMN external_id TEXT NOT NULL DEFAULT '';
CREATE INDEX sms_message_external ON sms_message (gateway, external_id) WHERE external_id <> '';
