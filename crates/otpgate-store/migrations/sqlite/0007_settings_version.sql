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
CREATE TRIGGER config_insert_settings AFTER INSERT ON config BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER config_update_settings AFTER UPDATE ON config BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER config_delete_settings AFTER DELETE ON config BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER policy_insert_settings AFTER INSERT ON policy BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER policy_update_settings AFTER UPDATE ON policy BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER policy_delete_settings AFTER DELETE ON policy BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER realm_insert_settings AFTER INSERT ON realm BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER realm_update_settings AFTER UPDATE ON realm BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER realm_delete_settings AFTER DELETE ON realm BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER realm_resolver_insert_settings AFTER INSERT ON realm_resolver BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER realm_resolver_update_settings AFTER UPDATE ON realm_resolver BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER realm_resolver_delete_settings AFTER DELETE ON realm_resolver BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER resolver_insert_settings AFTER INSERT ON resolver BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER resolver_update_settings AFTER UPDATE ON resolver BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER resolver_delete_settings AFTER DELETE ON resolver BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER smsgateway_insert_settings AFTER INSERT ON smsgateway BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER smsgateway_update_settings AFTER UPDATE ON smsgateway BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER smsgateway_delete_settings AFTER DELETE ON smsgateway BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER smsgateway_option_insert_settings AFTER INSERT ON smsgateway_option BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER smsgateway_option_update_settings AFTER UPDATE ON smsgateway_option BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
CREATE TRIGGER smsgateway_option_delete_settings AFTER DELETE ON smsgateway_option BEGIN
    UPDATE settings_version SET version = version + 1 + abs(random() % 1048576) WHERE id = 1;
END;
