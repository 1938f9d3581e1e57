-- When an admin's password was last set (Unix seconds): API tokens issued before it no longer
-- count, so a changed password ends the sessions of whoever knew the old one.
ALTER TABLE admin ADD COLUMN password_changed_at BIGINT NOT NULL DEFAULT 0;
