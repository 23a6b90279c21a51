-- 0010_accounts: user accounts beyond the first admin. A user can be
-- disabled (its sessions end and it cannot log in), may have to change a
-- temporary password at its next login, records its last login, and may come
-- from single sign-on: sso_subject is "<issuer> <subject>" of its OpenID
-- Connect identity, and such a user has no local password (password_hash '').
ALTER TABLE users ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_login_at INTEGER;
ALTER TABLE users ADD COLUMN sso_subject TEXT;

CREATE UNIQUE INDEX users_sso_subject ON users (sso_subject) WHERE sso_subject IS NOT NULL;
