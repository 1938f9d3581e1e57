-- The sealed service-account password of an LDAP resolver (BINDPW), kept out of the
-- resolver's plain parameters; '' when the resolver has none.
ALTER TABLE resolver ADD COLUMN secret TEXT NOT NULL DEFAULT '';
