-- Drop-in for privacyIDEA sites (issue 19): token realms, and re-sent challenges.
-- privacyIDEA's token realms: the realms a token belongs to besides its owner's,
-- so `POST /token/realm/<serial>` can put unassigned tokens into realms and an unassigned
-- token keeps the realm of the user it had.
CREATE TABLE tokenrealm (
    token_id BIGINT NOT NULL REFERENCES token(id) ON DELETE CASCADE,
    realm    TEXT   NOT NULL,
    PRIMARY KEY (token_id, realm)
);
CREATE INDEX tokenrealm_realm ON tokenrealm (realm);

-- When a challenge's SMS last went out: a PIN request after the resend cooldown re-sends the
-- same code of a live challenge instead of a second SMS with a different code.
ALTER TABLE challenge ADD COLUMN sent_at BIGINT NOT NULL DEFAULT 0;
UPDATE challenge SET sent_at = created_at;
