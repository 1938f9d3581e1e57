-- The rest of privacyIDEA 3.14's policy matching: the client applications a policy is for
-- (user_agents, comma-separated names like privacyidea-cp or FreeRADIUS) and whether its user
-- names match in any case.
ALTER TABLE policy ADD COLUMN user_agents TEXT NOT NULL DEFAULT '';
ALTER TABLE policy ADD COLUMN user_case_insensitive BIGINT NOT NULL DEFAULT 0;
