-- 0006: the person's own folder tree in library/ and workspace/, and the
-- times a filesystem keeps (ctime, atime, a folder's mtime).
--
-- A folder is a row of `folders`.  Each user has one top folder per place
-- (parent_id NULL, name ''): it holds the times of library/ or workspace/
-- itself, and every file or folder at the top points at it.  A file's folder
-- is user_library.folder_id or workspace_assets.folder_id; a row the web
-- application inserts without one lands in the top folder (trigger), so the
-- web application needs to know nothing of folders to keep working, and can
-- show a file's folder by joining it.
--
-- Times are nanoseconds since the epoch (bigint): rsync and make compare
-- them to the nanosecond.  A folder's mtime and ctime move whenever an entry
-- is made, removed or renamed in it; triggers do that, so it holds for the
-- web application's changes too and costs no round trip.

CREATE FUNCTION mvault_ns() RETURNS bigint
  LANGUAGE sql VOLATILE
  AS 'SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000';

CREATE TABLE folders (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  place      text        NOT NULL CHECK (place IN ('library', 'workspace')),
  parent_id  uuid        REFERENCES folders(id),
  name       text        NOT NULL,
  ino        bigint      NOT NULL UNIQUE DEFAULT nextval('fs_ino_seq'),
  mode       integer     NOT NULL DEFAULT 493,   -- 0755
  mtime_ns   bigint      NOT NULL DEFAULT mvault_ns(),
  ctime_ns   bigint      NOT NULL DEFAULT mvault_ns(),
  atime_ns   bigint      NOT NULL DEFAULT mvault_ns(),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT folders_top_check CHECK ((parent_id IS NULL) = (name = ''))
);
CREATE UNIQUE INDEX folders_top_idx ON folders (user_id, place) WHERE parent_id IS NULL;
CREATE UNIQUE INDEX folders_parent_name_idx ON folders (parent_id, name);

CREATE TRIGGER folders_updated_at BEFORE UPDATE ON folders
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE folders ENABLE ROW LEVEL SECURITY;
ALTER TABLE folders FORCE ROW LEVEL SECURITY;
CREATE POLICY folders_owner ON folders USING (user_id = mvault_uid()) WITH CHECK (user_id = mvault_uid());

-- The top folder of P_PLACE for P_USER, made on first use.
CREATE FUNCTION mvault_top_folder(p_user uuid, p_place text) RETURNS uuid
  LANGUAGE plpgsql
  AS $$
DECLARE
  f uuid;
BEGIN
  SELECT id INTO f FROM folders WHERE user_id = p_user AND place = p_place AND parent_id IS NULL;
  IF f IS NULL THEN
    INSERT INTO folders (user_id, place, name) VALUES (p_user, p_place, '')
      ON CONFLICT (user_id, place) WHERE parent_id IS NULL DO NOTHING
      RETURNING id INTO f;
    IF f IS NULL THEN
      SELECT id INTO f FROM folders WHERE user_id = p_user AND place = p_place AND parent_id IS NULL;
    END IF;
  END IF;
  RETURN f;
END
$$;

-- A file's folder.
ALTER TABLE user_library ADD COLUMN folder_id uuid REFERENCES folders(id);
ALTER TABLE workspace_assets ADD COLUMN folder_id uuid REFERENCES folders(id);

-- Existing rows go to their user's top folders (row-level security set
-- aside for the owner while it does).
ALTER TABLE users NO FORCE ROW LEVEL SECURITY;
ALTER TABLE folders NO FORCE ROW LEVEL SECURITY;
ALTER TABLE user_library NO FORCE ROW LEVEL SECURITY;
ALTER TABLE workspace_assets NO FORCE ROW LEVEL SECURITY;
INSERT INTO folders (user_id, place, name)
  SELECT u.id, p.place, '' FROM users u CROSS JOIN (VALUES ('library'), ('workspace')) AS p(place);
UPDATE user_library l SET folder_id = f.id FROM folders f
  WHERE f.user_id = l.user_id AND f.place = 'library' AND f.parent_id IS NULL;
UPDATE workspace_assets w SET folder_id = f.id FROM folders f
  WHERE f.user_id = w.user_id AND f.place = 'workspace' AND f.parent_id IS NULL;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
ALTER TABLE folders FORCE ROW LEVEL SECURITY;
ALTER TABLE user_library FORCE ROW LEVEL SECURITY;
ALTER TABLE workspace_assets FORCE ROW LEVEL SECURITY;

CREATE FUNCTION mvault_folder_default() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF NEW.folder_id IS NULL THEN
    NEW.folder_id := mvault_top_folder(NEW.user_id,
                       CASE WHEN TG_TABLE_NAME = 'user_library' THEN 'library' ELSE 'workspace' END);
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER user_library_folder BEFORE INSERT ON user_library
  FOR EACH ROW EXECUTE FUNCTION mvault_folder_default();
CREATE TRIGGER workspace_assets_folder BEFORE INSERT ON workspace_assets
  FOR EACH ROW EXECUTE FUNCTION mvault_folder_default();
ALTER TABLE user_library ALTER COLUMN folder_id SET NOT NULL;
ALTER TABLE workspace_assets ALTER COLUMN folder_id SET NOT NULL;

CREATE INDEX user_library_folder_memory_idx ON user_library (folder_id, memory_id);
CREATE INDEX workspace_assets_folder_memory_idx ON workspace_assets (folder_id, memory_id);

-- --- a folder's mtime and ctime follow its entries -----------------------

CREATE FUNCTION mvault_folder_touch(p_folder uuid) RETURNS void
  LANGUAGE sql
  AS 'UPDATE folders SET mtime_ns = mvault_ns(), ctime_ns = mvault_ns() WHERE id = p_folder';

-- A file row arrives in, leaves or moves between folders.
CREATE FUNCTION mvault_place_touch() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM mvault_folder_touch(OLD.folder_id);
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.folder_id IS DISTINCT FROM OLD.folder_id) THEN
    PERFORM mvault_folder_touch(NEW.folder_id);
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER user_library_touch AFTER INSERT OR DELETE OR UPDATE OF folder_id ON user_library
  FOR EACH ROW EXECUTE FUNCTION mvault_place_touch();
CREATE TRIGGER workspace_assets_touch AFTER INSERT OR DELETE OR UPDATE OF folder_id ON workspace_assets
  FOR EACH ROW EXECUTE FUNCTION mvault_place_touch();

-- A folder is made, removed, renamed or moved: its parents' times.
CREATE FUNCTION mvault_folder_parent_touch() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.parent_id IS NOT NULL THEN
    PERFORM mvault_folder_touch(OLD.parent_id);
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.parent_id IS DISTINCT FROM OLD.parent_id) THEN
    IF NEW.parent_id IS NOT NULL THEN
      PERFORM mvault_folder_touch(NEW.parent_id);
    END IF;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER folders_parent_touch AFTER INSERT OR DELETE OR UPDATE OF parent_id, name ON folders
  FOR EACH ROW EXECUTE FUNCTION mvault_folder_parent_touch();

-- The folder (library or workspace) that shows memory P_MEMORY.
CREATE FUNCTION mvault_memory_folder_touch(p_memory uuid) RETURNS void
  LANGUAGE sql
  AS $$
  UPDATE folders SET mtime_ns = mvault_ns(), ctime_ns = mvault_ns()
   WHERE id IN (SELECT folder_id FROM user_library WHERE memory_id = p_memory
                UNION ALL SELECT folder_id FROM workspace_assets WHERE memory_id = p_memory)
$$;

-- --- a file's ctime and atime ---------------------------------------------

-- ctime: every change of a file's metadata or content, and nothing else (an
-- upload finishing is not a change of the file).  atime: kept as set.
ALTER TABLE memory_items ADD COLUMN ctime_ns bigint;
ALTER TABLE memory_items ADD COLUMN atime_ns bigint;

CREATE FUNCTION mvault_item_ctime() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    NEW.ctime_ns := coalesce(NEW.ctime_ns, mvault_ns());
  ELSIF (NEW.display_name, NEW.mode, NEW.mtime, NEW.mtime_nsec, NEW.primary_asset_id, NEW.ino,
         NEW.atime_ns) IS DISTINCT FROM
        (OLD.display_name, OLD.mode, OLD.mtime, OLD.mtime_nsec, OLD.primary_asset_id, OLD.ino,
         OLD.atime_ns)
        AND NEW.ctime_ns IS NOT DISTINCT FROM OLD.ctime_ns THEN
    NEW.ctime_ns := mvault_ns();
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER memory_items_ctime BEFORE INSERT OR UPDATE ON memory_items
  FOR EACH ROW EXECUTE FUNCTION mvault_item_ctime();

-- A rename is a change in the file's folder too.
CREATE FUNCTION mvault_item_rename_touch() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  PERFORM mvault_memory_folder_touch(NEW.memory_id);
  RETURN NULL;
END
$$;
CREATE TRIGGER memory_items_rename_touch AFTER UPDATE OF display_name ON memory_items
  FOR EACH ROW WHEN (NEW.display_name IS DISTINCT FROM OLD.display_name)
  EXECUTE FUNCTION mvault_item_rename_touch();

-- A file going to or coming back from the trash leaves or joins its folder.
CREATE FUNCTION mvault_asset_lifecycle_touch() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM memory_items i WHERE i.primary_asset_id = NEW.id) THEN
    PERFORM mvault_memory_folder_touch(NEW.memory_id);
    UPDATE memory_items SET ctime_ns = mvault_ns() WHERE primary_asset_id = NEW.id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER memory_assets_lifecycle_touch AFTER UPDATE OF lifecycle_status ON memory_assets
  FOR EACH ROW WHEN (OLD.lifecycle_status IS DISTINCT FROM NEW.lifecycle_status
                     AND (OLD.lifecycle_status = 'active' OR NEW.lifecycle_status = 'active')
                     AND NEW.variant_of_asset_id IS NULL)
  EXECUTE FUNCTION mvault_asset_lifecycle_touch();

-- --- replaced versions -----------------------------------------------------

-- An original that a newer version replaced keeps an inode number of its
-- own while it stays in the trash (its item's number is the current one's).
ALTER TABLE memory_assets ADD COLUMN version_ino bigint UNIQUE;
CREATE INDEX memory_assets_version_idx ON memory_assets (memory_item_id, tombstoned_at)
  WHERE version_ino IS NOT NULL;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON folders TO mvault_app';
    EXECUTE 'GRANT EXECUTE ON FUNCTION mvault_ns(), mvault_top_folder(uuid, text),'
            ' mvault_folder_touch(uuid), mvault_memory_folder_touch(uuid) TO mvault_app';
  END IF;
END
$$;
