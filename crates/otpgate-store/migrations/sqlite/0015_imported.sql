-- What `otpgate import privacyidea` brought in, and from which installation (a fingerprint of
-- its key file): a second run skips what it imported before (and only moves token counters
-- forward), and an otpgate item of the same name that it did not import is a clash.
CREATE TABLE imported (
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    imported_at BIGINT NOT NULL,
    PRIMARY KEY (kind, name)
);
