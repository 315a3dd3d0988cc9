-- scan2pay PSP: the merchant board's sessions are signed cookies that the
-- server keeps no copy of; each is bound to the merchant's key and to this
-- number. Signing out adds one to it, which ends every session made before.
ALTER TABLE merchants ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
