-- 0010: more file operations as one call each (issue 10): unlink (in a
-- folder of the tree, a collection or a gallery) and link into a gallery;
-- and the pieces the daemon's remaining multi-statement moves share with
-- them, so each rule is written once: where a file's name lives, which
-- file a name shows, a gallery membership made or dropped, a workspace file
-- promoted, a fresh file's content merged into the file it replaces (which
-- mvfs_move_tree of 0009 did inline; it now calls mvfs_merge).
-- Errors as in 0009: SQLSTATE 'MV' + errno (MV002 ENOENT, MV017 EEXIST,
-- MV022 EINVAL).  Every function runs as its caller: row-level security
-- applies to everything it touches.

-- The tree folder (database inode number) that holds the name of memory
-- P_MEM: its library or workspace row's folder; the user's library/ itself
-- for a memory the web application made without a place.  The key of the
-- name lock of that file (mvfs_lock_name).
CREATE FUNCTION mvfs_home(p_user uuid, p_mem uuid) RETURNS bigint
  LANGUAGE sql STABLE
  AS $$
  SELECT coalesce(
    (SELECT f.ino FROM user_library x JOIN folders f ON f.id = x.folder_id WHERE x.memory_id = p_mem),
    (SELECT f.ino FROM workspace_assets x JOIN folders f ON f.id = x.folder_id WHERE x.memory_id = p_mem),
    (SELECT f.ino FROM folders f WHERE f.user_id = p_user AND f.place = 'library' AND f.parent_id IS NULL))
$$;

-- The file folder P_DIR of P_PLACE ('library' or 'workspace': a tree
-- folder's database inode number; 'collection' or 'gallery': its inode
-- number) shows as P_NAME, a name in no twin's form: of the active files
-- with that display name there, the one with the lowest inode number (the
-- others show a ~suffix; meta_files.c).  With P_INO, only file P_INO, and
-- only when it still has display name P_NAME there (a twin the daemon
-- resolved).  No row for none.
CREATE FUNCTION mvfs_shown(p_user uuid, p_place text, p_dir bigint, p_name text, p_ino bigint)
  RETURNS TABLE (item uuid, mem uuid, ino bigint, asset uuid, display_name text)
  LANGUAGE sql STABLE
  AS $$
  SELECT i.id, i.memory_id, i.ino, a.id, i.display_name
    FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE i.user_id = p_user AND i.display_name = p_name AND a.lifecycle_status = 'active'
     AND (p_ino IS NULL OR i.ino = p_ino)
     AND CASE p_place
           WHEN 'library' THEN EXISTS (SELECT 1 FROM user_library x WHERE x.memory_id = i.memory_id
                                        AND x.folder_id = (SELECT id FROM folders WHERE ino = p_dir))
           WHEN 'workspace' THEN EXISTS (SELECT 1 FROM workspace_assets x WHERE x.memory_id = i.memory_id
                                          AND x.folder_id = (SELECT id FROM folders WHERE ino = p_dir)
                                          AND x.expires_at > mvault_now())
           WHEN 'collection' THEN EXISTS (SELECT 1 FROM user_library x WHERE x.memory_id = i.memory_id
                                           AND x.collection_id = (SELECT id FROM user_collections
                                                                   WHERE ino = p_dir))
           WHEN 'gallery' THEN EXISTS (SELECT 1 FROM gallery_items x WHERE x.memory_id = i.memory_id
                                        AND x.gallery_id = (SELECT id FROM galleries WHERE ino = p_dir))
           ELSE false
         END
   ORDER BY i.ino LIMIT 1
$$;

-- Memory P_MEM (item P_ITEM) joins / leaves gallery P_GALLERY (inode
-- number); the file's ctime moves (nothing else about it shows the change).
CREATE FUNCTION mvfs_gallery_add(p_user uuid, p_mem uuid, p_item uuid, p_gallery bigint) RETURNS void
  LANGUAGE sql
  AS $$
  INSERT INTO gallery_items (gallery_id, memory_id, user_id)
    SELECT id, p_mem, p_user FROM galleries WHERE ino = p_gallery
    ON CONFLICT (gallery_id, memory_id) DO NOTHING;
  UPDATE memory_items SET ctime_ns = mvault_ns() WHERE id = p_item;
$$;

CREATE FUNCTION mvfs_gallery_remove(p_user uuid, p_mem uuid, p_item uuid, p_gallery bigint) RETURNS void
  LANGUAGE sql
  AS $$
  DELETE FROM gallery_items WHERE memory_id = p_mem
     AND gallery_id = (SELECT id FROM galleries WHERE ino = p_gallery);
  UPDATE memory_items SET ctime_ns = mvault_ns() WHERE id = p_item;
$$;

-- A workspace file becomes a library file in tree folder P_FOLDER
-- (database inode number; NULL: library/ itself): its workspace row, and
-- with it its expiry, goes; a library row takes its place.  False when
-- the memory was not in the workspace (then nothing changes).
CREATE FUNCTION mvfs_promote(p_user uuid, p_mem uuid, p_folder bigint) RETURNS boolean
  LANGUAGE plpgsql
  AS $$
BEGIN
  DELETE FROM workspace_assets WHERE memory_id = p_mem;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO user_library (user_id, memory_id, asset_type, storage_path, file_size_bytes, mime_type, folder_id)
    SELECT p_user, mm.id, mm.type::text, coalesce(a.storage_key, ''), a.bytes, a.mime_type,
           (SELECT id FROM folders WHERE ino = p_folder)
      FROM memories mm JOIN memory_items i ON i.memory_id = mm.id
      JOIN memory_assets a ON a.id = i.primary_asset_id
     WHERE mm.id = p_mem LIMIT 1;
  RETURN true;
END
$$;

-- A save: the content of fresh file P_FROM (item id: one version, in no
-- gallery; the caller checked) becomes the new version of file P_TO,
-- which keeps its memory, places and name and takes P_FROM's inode
-- number, mode and times; P_FROM's own rows go, P_TO's old content becomes
-- a replaced version (mvfs_retire_version).  Returns P_TO's old inode
-- number, which now is the replaced version's.
CREATE FUNCTION mvfs_merge(p_user uuid, p_from uuid, p_to uuid, p_min_age integer, p_trash_days integer)
  RETURNS bigint
  LANGUAGE plpgsql
  AS $$
DECLARE
  f record;
  t record;
BEGIN
  SELECT i.memory_id AS mem, i.ino, i.mode, i.mtime, i.mtime_nsec, i.atime_ns, i.primary_asset_id AS asset
    INTO f FROM memory_items i WHERE i.id = p_from;
  SELECT i.memory_id AS mem, i.ino, i.primary_asset_id AS asset INTO t FROM memory_items i WHERE i.id = p_to;
  IF f.mem IS NULL OR t.mem IS NULL THEN
    RAISE EXCEPTION 'file gone' USING ERRCODE = 'MV002';
  END IF;
  -- F's assets (its original and any variant of it) become T's; then F's
  -- item can go without taking them along
  UPDATE memory_assets SET memory_id = t.mem,
         memory_item_id = CASE WHEN memory_item_id = p_from THEN p_to ELSE memory_item_id END
   WHERE memory_id = f.mem;
  DELETE FROM memory_items WHERE id = p_from;
  UPDATE memory_items SET ino = f.ino, primary_asset_id = f.asset, mode = f.mode, mtime = f.mtime,
         mtime_nsec = f.mtime_nsec, atime_ns = f.atime_ns
   WHERE id = p_to;
  PERFORM mvfs_retire_version(t.asset, t.ino, p_min_age, p_trash_days);
  UPDATE memories SET type = (SELECT type FROM memories WHERE id = f.mem), expires_at = NULL,
         updated_by = p_user,
         status = CASE WHEN EXISTS (SELECT 1 FROM memory_assets WHERE memory_id = t.mem
                                     AND lifecycle_status = 'active' AND upload_status <> 'completed'
                                     AND variant_of_asset_id IS NULL)
                       THEN 'pending'::memory_status_t ELSE 'active' END
   WHERE id = t.mem;
  UPDATE user_library l SET storage_path = coalesce(a.storage_key, ''), file_size_bytes = a.bytes,
         mime_type = a.mime_type, asset_type = (SELECT type FROM memories WHERE id = t.mem)::text
    FROM memory_assets a WHERE a.id = f.asset AND l.memory_id = t.mem;
  UPDATE workspace_assets w SET temp_storage_path = coalesce(a.storage_key, ''), file_size_bytes = a.bytes,
         mime_type = a.mime_type
    FROM memory_assets a WHERE a.id = f.asset AND w.memory_id = t.mem;
  DELETE FROM memories WHERE id = f.mem;
  RETURN t.ino;
END
$$;

-- Removes P_NAME from folder P_DIR of P_PLACE (as mvfs_shown; with P_INO,
-- a twin the daemon resolved): in a gallery the membership only; anywhere
-- else the file goes to the trash (mvfs_tombstone_file).  The name is
-- locked in the folder that holds it, then looked up again: another mount
-- may have changed it meanwhile.  Returns the file's inode number.  MV002
-- when nothing shows by that name.
CREATE FUNCTION mvfs_unlink(p_user uuid, p_place text, p_dir bigint, p_name text, p_ino bigint)
  RETURNS bigint
  LANGUAGE plpgsql
  AS $$
DECLARE
  f record;
BEGIN
  SELECT * INTO f FROM mvfs_shown(p_user, p_place, p_dir, p_name, p_ino);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no file %', p_name USING ERRCODE = 'MV002';
  END IF;
  PERFORM mvfs_lock_name(p_user, mvfs_home(p_user, f.mem), f.display_name);
  SELECT * INTO f FROM mvfs_shown(p_user, p_place, p_dir, p_name, p_ino);
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no file %', p_name USING ERRCODE = 'MV002';
  END IF;
  IF p_place = 'gallery' THEN
    PERFORM mvfs_gallery_remove(p_user, f.mem, f.item, p_dir);
  ELSE
    PERFORM mvfs_tombstone_file(p_user, f.asset, f.mem);
  END IF;
  RETURN f.ino;
END
$$;

-- Adds file P_INO to gallery P_GALLERY (inode number) under P_NAME, which
-- must be its display name (MV022 otherwise; NULL: the daemon checked a
-- twin's name itself, and whether the gallery shows it).  A workspace file
-- is promoted to library/.  MV002 for no such active file or gallery,
-- MV017 when the gallery already shows a file called P_NAME, or this one.
-- Returns the file's inode number, and its link count and ctime as they
-- are now (the daemon reads the rest of the file in the same statement:
-- the link changes nothing else about it).  The count is FILE_COLS'
-- (meta_files.c).
CREATE FUNCTION mvfs_link(p_user uuid, p_ino bigint, p_gallery bigint, p_name text)
  RETURNS TABLE (ino bigint, nlink bigint, ctime_ns bigint)
  LANGUAGE plpgsql
  AS $$
DECLARE
  it uuid;
  mem uuid;
  disp text;
  g uuid;
BEGIN
  SELECT i.id, i.memory_id, i.display_name INTO it, mem, disp
    FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE i.user_id = p_user AND i.ino = p_ino AND a.lifecycle_status = 'active';
  IF it IS NULL THEN
    RAISE EXCEPTION 'no file %', p_ino USING ERRCODE = 'MV002';
  END IF;
  IF p_name IS NOT NULL AND disp <> p_name THEN
    RAISE EXCEPTION 'file % is called %, not %', p_ino, disp, p_name USING ERRCODE = 'MV022';
  END IF;
  SELECT id INTO g FROM galleries WHERE user_id = p_user AND galleries.ino = p_gallery;
  IF g IS NULL THEN
    RAISE EXCEPTION 'no gallery %', p_gallery USING ERRCODE = 'MV002';
  END IF;
  PERFORM mvfs_lock_name(p_user, mvfs_home(p_user, mem), disp);
  -- again, under the lock: an unlink may have won meanwhile
  IF NOT EXISTS (SELECT 1 FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
                  WHERE i.id = it AND i.display_name = disp AND a.lifecycle_status = 'active') THEN
    RAISE EXCEPTION 'no file %', p_ino USING ERRCODE = 'MV002';
  END IF;
  IF p_name IS NOT NULL AND EXISTS (SELECT 1 FROM gallery_items x JOIN memory_items i ON i.memory_id = x.memory_id
                                      JOIN memory_assets a ON a.id = i.primary_asset_id
                                     WHERE x.gallery_id = g AND i.user_id = p_user AND i.display_name = p_name
                                       AND a.lifecycle_status = 'active') THEN
    RAISE EXCEPTION 'gallery % shows a file called %', p_gallery, p_name USING ERRCODE = 'MV017';
  END IF;
  -- shown there already, under another of its names
  IF EXISTS (SELECT 1 FROM gallery_items x WHERE x.gallery_id = g AND x.memory_id = mem) THEN
    RAISE EXCEPTION 'gallery % shows file % already', p_gallery, p_ino USING ERRCODE = 'MV017';
  END IF;
  PERFORM mvfs_promote(p_user, mem, NULL);
  PERFORM mvfs_gallery_add(p_user, mem, it, p_gallery);
  RETURN QUERY
    SELECT i.ino,
           (SELECT count(*) + count(l2.collection_id) FROM user_library l2 WHERE l2.memory_id = i.memory_id)
           + (SELECT count(*) FROM gallery_items g2 WHERE g2.memory_id = i.memory_id)
           + (SELECT count(*) FROM workspace_assets w2 WHERE w2.memory_id = i.memory_id
              AND w2.expires_at > mvault_now()),
           i.ctime_ns
      FROM memory_items i WHERE i.id = it;
END
$$;

-- mvfs_move_tree of 0009, its save-merge now mvfs_merge's (the daemon's
-- other moves call that too).  Otherwise unchanged.
CREATE OR REPLACE FUNCTION mvfs_move_tree(p_user uuid, p_from bigint, p_name text, p_to bigint, p_newname text,
                                          p_noreplace boolean, p_min_age integer, p_trash_days integer)
  RETURNS bigint
  LANGUAGE plpgsql
  AS $$
DECLARE
  from_id uuid;
  to_id uuid;
  lib boolean;
  f record;
  t record;
  t_found boolean;
BEGIN
  IF p_from < p_to OR (p_from = p_to AND p_name COLLATE "C" <= p_newname COLLATE "C") THEN
    PERFORM mvfs_lock_name(p_user, p_from, p_name);
    PERFORM mvfs_lock_name(p_user, p_to, p_newname);
  ELSE
    PERFORM mvfs_lock_name(p_user, p_to, p_newname);
    PERFORM mvfs_lock_name(p_user, p_from, p_name);
  END IF;
  SELECT id, place = 'library' INTO from_id, lib FROM folders WHERE ino = p_from;
  SELECT id INTO to_id FROM folders WHERE ino = p_to;
  IF from_id IS NULL OR to_id IS NULL THEN
    RAISE EXCEPTION 'folder gone' USING ERRCODE = 'MV002';
  END IF;
  SELECT i.id AS item, i.memory_id AS mem, i.ino
    INTO f
    FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE i.user_id = p_user AND i.display_name = p_name AND a.lifecycle_status = 'active'
     AND (CASE WHEN lib THEN EXISTS (SELECT 1 FROM user_library x WHERE x.memory_id = i.memory_id
                                      AND x.folder_id = from_id)
               ELSE EXISTS (SELECT 1 FROM workspace_assets x WHERE x.memory_id = i.memory_id
                             AND x.folder_id = from_id AND x.expires_at > mvault_now()) END)
   ORDER BY i.ino LIMIT 1;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no file %', p_name USING ERRCODE = 'MV002';
  END IF;
  IF p_from = p_to AND p_name = p_newname THEN
    RETURN 0;
  END IF;
  IF EXISTS (SELECT 1 FROM folders s WHERE s.parent_id = to_id AND s.name = p_newname) THEN
    RAISE EXCEPTION 'a folder is called %', p_newname USING ERRCODE = CASE WHEN p_noreplace THEN 'MV017' ELSE 'MV021' END;
  END IF;
  SELECT i.id AS item, i.memory_id AS mem, i.ino, a.id AS asset, a.upload_status
    INTO t
    FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE i.user_id = p_user AND i.display_name = p_newname AND a.lifecycle_status = 'active' AND i.id <> f.item
     AND (CASE WHEN lib THEN EXISTS (SELECT 1 FROM user_library x WHERE x.memory_id = i.memory_id
                                      AND x.folder_id = to_id)
               ELSE EXISTS (SELECT 1 FROM workspace_assets x WHERE x.memory_id = i.memory_id
                             AND x.folder_id = to_id AND x.expires_at > mvault_now()) END)
   ORDER BY i.ino LIMIT 1;
  t_found := FOUND;
  IF t_found THEN
    IF p_noreplace THEN
      RAISE EXCEPTION 'a file is called %', p_newname USING ERRCODE = 'MV017';
    END IF;
    IF t.upload_status <> 'pending'
       AND (SELECT count(*) FROM memory_assets WHERE memory_item_id = f.item AND variant_of_asset_id IS NULL) = 1
       AND NOT EXISTS (SELECT 1 FROM gallery_items WHERE memory_id = f.mem) THEN
      RETURN mvfs_merge(p_user, f.item, t.item, p_min_age, p_trash_days);
    END IF;
    PERFORM mvfs_tombstone_file(p_user, t.asset, t.mem);
  END IF;
  IF p_name <> p_newname THEN
    UPDATE memory_items SET display_name = p_newname WHERE id = f.item;
  END IF;
  IF p_from <> p_to THEN
    IF lib THEN
      UPDATE user_library SET folder_id = to_id WHERE memory_id = f.mem;
    ELSE
      UPDATE workspace_assets SET folder_id = to_id WHERE memory_id = f.mem;
    END IF;
  END IF;
  RETURN CASE WHEN t_found THEN t.ino ELSE 0 END;
END
$$;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT EXECUTE ON FUNCTION mvfs_home(uuid, uuid),'
            ' mvfs_shown(uuid, text, bigint, text, bigint),'
            ' mvfs_gallery_add(uuid, uuid, uuid, bigint), mvfs_gallery_remove(uuid, uuid, uuid, bigint),'
            ' mvfs_promote(uuid, uuid, bigint),'
            ' mvfs_merge(uuid, uuid, uuid, integer, integer),'
            ' mvfs_unlink(uuid, text, bigint, text, bigint),'
            ' mvfs_link(uuid, bigint, bigint, text),'
            ' mvfs_move_tree(uuid, bigint, text, bigint, text, boolean, integer, integer) TO mvault_app';
  END IF;
END
$$;
