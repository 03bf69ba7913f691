-- 0008: extended attributes a user sets on a file or folder (user.*), kept
-- per inode as ext4 keeps them, so that `rsync -aX` and desktop tools
-- (user.xdg.origin.url, user.baloo.rating) find them again.
--
-- Inode numbers come from fs_ino_seq and are unique across memory items,
-- collections and galleries, so (user_id, ino) names any of them without a
-- foreign key to each table.  The rows outlive a move to the trash: a
-- restore brings the attributes back with the file.  The user.mvault.*
-- names are the filesystem's (computed from the other tables) and are
-- never stored here.
CREATE TABLE inode_xattrs (
  user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  ino        bigint      NOT NULL CHECK (ino >= 1000),
  name       text        NOT NULL CHECK (name LIKE 'user.%' AND name NOT LIKE 'user.mvault.%'
                                         AND octet_length(name) <= 255),
  value      bytea       NOT NULL CHECK (octet_length(value) <= 65536),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, ino, name)
);

ALTER TABLE inode_xattrs ENABLE ROW LEVEL SECURITY;
ALTER TABLE inode_xattrs FORCE ROW LEVEL SECURITY;
CREATE POLICY inode_xattrs_owner ON inode_xattrs USING (user_id = mvault_uid())
  WITH CHECK (user_id = mvault_uid());

-- 0003 granted ALL TABLES only for the tables that existed then.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON inode_xattrs TO mvault_app';
  END IF;
END
$$;
