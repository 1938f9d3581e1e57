-- A number that changes with every change to the settings the login path reads (system
-- configuration, policies, realms, resolvers, SMS gateways), kept by triggers so that every
-- writer counts: this node, other nodes, the CLI, copy-db. Each node keeps one copy of those
-- settings and reads only this number per request; a different number means reload. Each
-- change adds a random step, so a database restored to an older state and changed again does
-- not come back to a number a node still holds with other settings.
CREATE TABLE settings_version (
    id      INTEGER PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO settings_version (id, version) VALUES (1, 0);
CREATE FUNCTION bump_settings_version() RETURNS trigger AS $$
BEGIN
    UPDATE settings_version SET version = version + 1 + floor(random() * 1048576)::bigint WHERE id = 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER config_settings AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON config
    FOR EACH STATEMENT EXECUTE FUNCTION bump_settings_version();
CREATE TRIGGER policy_settings AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policy
    FOR EACH STATEMENT EXECUTE FUNCTION bump_settings_version();
CREATE TRIGGER realm_settings AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON realm
    FOR EACH STATEMENT EXECUTE FUNCTION bump_settings_version();
CREATE TRIGGER realm_resolver_settings AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON realm_resolver
    FOR EACH STATEMENT EXECUTE FUNCTION bump_settings_version();
CREATE TRIGGER resolver_settings AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON resolver
    FOR EACH STATEMENT EXECUTE FUNCTION bump_settings_version();
CREATE TRIGGER smsgateway_settings AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON smsgateway
    FOR EACH STATEMENT EXECUTE FUNCTION bump_settings_version();
CREATE TRIGGER smsgateway_option_settings AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON smsgateway_option
    FOR EACH STATEMENT EXECUTE FUNCTION bump_settings_version();
