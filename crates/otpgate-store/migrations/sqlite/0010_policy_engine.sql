-- privacyIDEA's whole policy (issue 20): the days and hours a policy applies, its extended
-- conditions (a JSON list of [section, key, comparator, value, active, handle_missing_data])
-- and check_all_resolvers.
ALTER TABLE policy ADD COLUMN time_range TEXT NOT NULL DEFAULT '';
ALTER TABLE policy ADD COLUMN conditions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE policy ADD COLUMN check_all_resolvers BIGINT NOT NULL DEFAULT 0;
