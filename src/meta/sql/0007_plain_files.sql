-- 0007: plain files - what operating systems and editors leave in folders
-- (.DS_Store, ._* AppleDouble files, Thumbs.db, desktop.ini, KDE's
-- .directory, editors' lock and swap files).  Tools that write them must
-- not fail, and they are no memories: they live here, in the folder of the
-- tree they were written in, with their bytes in the row (they are small),
-- never in memories, user_library or the store.  The web application's
-- view of the library never shows them.  A plain file is in the folder
-- with inode number dir_ino: a folder of the tree (its database inode
-- number), a collection or a gallery (Finder writes .DS_Store there too).

CREATE TABLE plain_files (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  dir_ino    bigint      NOT NULL,
  name       text        NOT NULL,
  ino        bigint      NOT NULL UNIQUE DEFAULT nextval('fs_ino_seq'),
  mode       integer     NOT NULL DEFAULT 420,
  mtime_ns   bigint      NOT NULL DEFAULT mvault_ns(),
  ctime_ns   bigint      NOT NULL DEFAULT mvault_ns(),
  atime_ns   bigint      NOT NULL DEFAULT mvault_ns(),
  content    bytea       NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT plain_files_dir_name_unique UNIQUE (user_id, dir_ino, name)
);

ALTER TABLE plain_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE plain_files FORCE ROW LEVEL SECURITY;
CREATE POLICY plain_files_owner ON plain_files USING (user_id = mvault_uid()) WITH CHECK (user_id = mvault_uid());

-- Entries come and go in their folder: its times move (as for files).
CREATE FUNCTION mvault_plain_touch() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE folders SET mtime_ns = mvault_ns(), ctime_ns = mvault_ns() WHERE ino = OLD.dir_ino;
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.dir_ino IS DISTINCT FROM OLD.dir_ino) THEN
    UPDATE folders SET mtime_ns = mvault_ns(), ctime_ns = mvault_ns() WHERE ino = NEW.dir_ino;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER plain_files_touch AFTER INSERT OR DELETE OR UPDATE OF dir_ino, name ON plain_files
  FOR EACH ROW EXECUTE FUNCTION mvault_plain_touch();

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON plain_files TO mvault_app';
  END IF;
END
$$;
