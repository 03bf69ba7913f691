-- 0009: file operations as server-side functions, so that each is one
-- round trip (issue 10): creating a file, recording its content at close,
-- recording that content's upload, and renaming a file in the tree.
-- Errors are raised with SQLSTATE 'MV' followed by the errno number
-- (MV002 ENOENT, MV017 EEXIST, MV021 EISDIR); the daemon maps them back
-- (pg_sqlstate_to_errno).  Every function runs as its caller, so row-level
-- security applies to everything it touches.

-- The advisory lock every change that takes or frees NAME in folder KEY
-- holds (the same key as meta_lock_name in the daemon).
CREATE FUNCTION mvfs_lock_name(p_user uuid, p_key bigint, p_name text) RETURNS void
  LANGUAGE sql
  AS $$ SELECT pg_advisory_xact_lock(hashtextextended(p_user::text || '/' || p_key::text || '/' || p_name, 0)) $$;

-- Drops the reference asset P_ASSET held on blob P_BLOB: a blob left with
-- none gets a row in the deletion outbox.
CREATE FUNCTION mvfs_release_blob(p_asset uuid, p_blob uuid) RETURNS void
  LANGUAGE sql
  AS $$
  WITH b AS (UPDATE blobs SET ref_count = ref_count - 1 WHERE id = p_blob
             RETURNING id, ref_count, storage_backend, storage_key)
  INSERT INTO asset_delete_jobs (asset_id, backend, backend_key, blob_id)
    SELECT p_asset, storage_backend, storage_key, id FROM b WHERE ref_count = 0
$$;

-- An original a newer version replaced: tombstoned with an inode number
-- of its own (P_INO, or a new one), kept in the trash for the grace period,
-- or with its grace period over at once when it was current for less than
-- P_MIN_AGE seconds.
CREATE FUNCTION mvfs_retire_version(p_asset uuid, p_ino bigint, p_min_age integer, p_trash_days integer)
  RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  b uuid;
  found_it boolean;
BEGIN
  UPDATE memory_assets SET lifecycle_status = 'tombstoned',
         tombstoned_at = CASE WHEN created_at > now() - make_interval(secs => p_min_age)
                              THEN mvault_now() - make_interval(days => p_trash_days, secs => 1)
                              ELSE mvault_now() END,
         version_ino = coalesce(p_ino, nextval('fs_ino_seq'))
   WHERE id = p_asset AND lifecycle_status = 'active'
   RETURNING blob_id, true INTO b, found_it;
  IF found_it AND b IS NOT NULL THEN
    PERFORM mvfs_release_blob(p_asset, b);
  END IF;
END
$$;

-- Creates a pending file called P_NAME in tree folder P_HOME (database
-- inode), in collection or gallery P_VIEW_INO too when P_VIEW is 'c' or
-- 'g': memory, item, original asset (upload pending), upload session and
-- place rows.  Returns the new file's inode, ids and times.
CREATE FUNCTION mvfs_create(p_user uuid, p_home bigint, p_view text, p_view_ino bigint, p_name text,
                            p_mode integer, p_mtime_sec bigint, p_mtime_nsec integer)
  RETURNS TABLE (ino bigint, memory_id uuid, item_id uuid, asset_id uuid, ctime_ns bigint, crtime_us bigint,
                 created text)
  LANGUAGE plpgsql
  AS $$
DECLARE
  f_id uuid;
  f_place text;
  mem uuid;
  it uuid := gen_random_uuid();
  asset uuid := gen_random_uuid();
BEGIN
  PERFORM mvfs_lock_name(p_user, p_home, p_name);
  SELECT f.id, f.place INTO f_id, f_place FROM folders f WHERE f.ino = p_home;
  IF f_id IS NULL THEN
    RAISE EXCEPTION 'folder % is gone', p_home USING ERRCODE = 'MV002';
  END IF;
  IF EXISTS (SELECT 1 FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
              WHERE i.user_id = p_user AND i.display_name = p_name AND a.lifecycle_status = 'active'
                AND (EXISTS (SELECT 1 FROM user_library x WHERE x.memory_id = i.memory_id AND x.folder_id = f_id)
                     OR EXISTS (SELECT 1 FROM workspace_assets x WHERE x.memory_id = i.memory_id
                                AND x.folder_id = f_id AND x.expires_at > mvault_now()))) THEN
    RAISE EXCEPTION 'a file is called %', p_name USING ERRCODE = 'MV017';
  END IF;
  IF EXISTS (SELECT 1 FROM folders s WHERE s.parent_id = f_id AND s.name = p_name) THEN
    RAISE EXCEPTION 'a folder is called %', p_name USING ERRCODE = 'MV021';
  END IF;
  -- the memory first: the assets' row-level security policy looks it up
  INSERT INTO memories (user_id, type, title, status, expires_at, created_by)
    VALUES (p_user, 'document', p_name, 'pending', now() + interval '24 hours', p_user)
    RETURNING id INTO mem;
  -- item and asset name each other: one statement, whose foreign keys are
  -- checked at its end
  WITH item AS (INSERT INTO memory_items (id, memory_id, user_id, display_name, primary_asset_id, mode, mtime,
                                          mtime_nsec)
                VALUES (it, mem, p_user, p_name, asset, p_mode, to_timestamp(p_mtime_sec), p_mtime_nsec))
  INSERT INTO memory_assets (id, memory_id, memory_item_id, group_id, asset_type)
    VALUES (asset, mem, it, gen_random_uuid(), 'original');
  INSERT INTO upload_sessions (user_id, memory_id, session_token, total_files, expires_at)
    VALUES (p_user, mem, gen_random_uuid()::text, 1, now() + interval '24 hours');
  IF f_place = 'library' THEN
    INSERT INTO user_library (user_id, memory_id, asset_type, storage_path, file_size_bytes, mime_type,
                              collection_id, folder_id)
      VALUES (p_user, mem, 'document', '', 0, 'application/octet-stream',
              CASE WHEN p_view = 'c' THEN (SELECT c.id FROM user_collections c WHERE c.ino = p_view_ino) END,
              f_id);
  ELSE
    INSERT INTO workspace_assets (user_id, memory_id, asset_type, temp_storage_path, file_size_bytes, mime_type,
                                  expires_at, folder_id)
      VALUES (p_user, mem, 'document', '', 0, 'application/octet-stream', mvault_now() + interval '7 days', f_id);
  END IF;
  IF p_view = 'g' THEN
    INSERT INTO gallery_items (gallery_id, memory_id, user_id)
      SELECT g.id, mem, p_user FROM galleries g WHERE g.ino = p_view_ino;
  END IF;
  RETURN QUERY
    SELECT i.ino, mem, it, asset, i.ctime_ns, (extract(epoch FROM i.created_at) * 1000000)::bigint,
           to_char(i.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
      FROM memory_items i WHERE i.id = it;
END
$$;

-- Records content (P_SHA, P_SIZE, ...) as file P_INO's current version,
-- staged locally and not yet in the store (write-back, at close): a
-- created file's asset is filled; a file with content gets a new asset and
-- the old one becomes a replaced version; the same bytes again change only
-- the time.  The memory no longer expires as an abandoned upload.
-- MV002 when the file is gone or in the trash.
CREATE FUNCTION mvfs_stage(p_user uuid, p_ino bigint, p_sha text, p_size bigint, p_mime text, p_type text,
                           p_backend text, p_key text, p_mtime_sec bigint, p_mtime_nsec integer, p_seq bigint,
                           p_min_age integer, p_trash_days integer)
  RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  it uuid;
  mem uuid;
  cur uuid;
  cur_sha text;
  cur_upload text;
  cur_life text;
  nasset uuid;
BEGIN
  SELECT i.id, i.memory_id, a.id, a.content_hash, a.upload_status, a.lifecycle_status
    INTO it, mem, cur, cur_sha, cur_upload, cur_life
    FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE i.user_id = p_user AND i.ino = p_ino;
  IF it IS NULL OR cur_life <> 'active' THEN
    RAISE EXCEPTION 'file % is gone', p_ino USING ERRCODE = 'MV002';
  END IF;
  IF cur_upload = 'pending' THEN
    UPDATE memory_assets SET content_hash = p_sha, computed_by = 'client', bytes = p_size, mime_type = p_mime,
           storage_backend = p_backend::storage_backend_t, storage_key = p_key, upload_status = 'uploading',
           staged_seq = p_seq
     WHERE id = cur;
  ELSIF cur_sha IS DISTINCT FROM p_sha THEN
    INSERT INTO memory_assets (memory_id, memory_item_id, group_id, asset_type, content_hash, computed_by, bytes,
                               mime_type, storage_backend, storage_key, upload_status, staged_seq)
      VALUES (mem, it, gen_random_uuid(), 'original', p_sha, 'client', p_size, p_mime,
              p_backend::storage_backend_t, p_key, 'uploading', p_seq)
      RETURNING id INTO nasset;
    -- the new one current first: the old one then leaves no folder
    UPDATE memory_items SET primary_asset_id = nasset WHERE id = it;
    PERFORM mvfs_retire_version(cur, NULL, p_min_age, p_trash_days);
  END IF;
  -- a version waiting for its upload makes the memory pending; the same
  -- bytes again (a rewrite that changed nothing) leave it as it is
  UPDATE memories SET expires_at = NULL, type = p_type::memory_type_t, updated_by = p_user,
         status = CASE WHEN status = 'active' AND (cur_upload = 'pending' OR cur_sha IS DISTINCT FROM p_sha)
                       THEN 'pending' ELSE status END
   WHERE id = mem;
  UPDATE user_library SET storage_path = p_key, file_size_bytes = p_size, mime_type = p_mime, asset_type = p_type
   WHERE memory_id = mem;
  UPDATE workspace_assets SET temp_storage_path = p_key, file_size_bytes = p_size, mime_type = p_mime,
         asset_type = p_type
   WHERE memory_id = mem;
  IF p_mtime_sec IS NOT NULL THEN
    UPDATE memory_items SET mtime = to_timestamp(p_mtime_sec), mtime_nsec = p_mtime_nsec WHERE id = it;
  END IF;
END
$$;

-- Records that version P_ASSET's bytes are in the store: its blob row
-- (made with one reference, or one more; none for a version no longer
-- active, whose blob then goes to the deletion outbox when nothing else
-- holds it), upload completed, and, for the active one, the memory active
-- once nothing of it waits and its upload session completed.  The asset
-- row is locked first: an unlink racing this either sees the blob and
-- drops its reference, or waits.
CREATE FUNCTION mvfs_complete(p_user uuid, p_asset uuid, p_sha text, p_size bigint, p_mime text, p_backend text,
                              p_key text)
  RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  life text;
  mem uuid;
  active boolean;
  b uuid;
  refs integer;
BEGIN
  SELECT lifecycle_status, memory_id INTO life, mem FROM memory_assets WHERE id = p_asset FOR UPDATE;
  IF life IS NULL OR life = 'deleted' THEN
    RETURN;
  END IF;
  active := life = 'active';
  INSERT INTO blobs (content_hash, storage_backend, storage_key, bytes, mime_type, ref_count)
    VALUES (p_sha, p_backend::storage_backend_t, p_key, p_size, p_mime, CASE WHEN active THEN 1 ELSE 0 END)
    ON CONFLICT (content_hash) DO UPDATE
      SET ref_count = blobs.ref_count + CASE WHEN active THEN 1 ELSE 0 END, last_accessed_at = now()
    RETURNING id, ref_count INTO b, refs;
  UPDATE memory_assets SET blob_id = b, upload_status = 'completed' WHERE id = p_asset;
  IF active AND refs = 1 THEN
    UPDATE asset_delete_jobs SET status = 'cancelled' WHERE blob_id = b AND status = 'pending';
  END IF;
  IF NOT active AND refs = 0 THEN
    INSERT INTO asset_delete_jobs (asset_id, backend, backend_key, blob_id)
      SELECT p_asset, bl.storage_backend, bl.storage_key, bl.id FROM blobs bl WHERE bl.id = b
         AND NOT EXISTS (SELECT 1 FROM asset_delete_jobs j WHERE j.blob_id = bl.id AND j.status = 'pending');
  END IF;
  IF active THEN
    UPDATE memories SET updated_by = p_user, status =
             CASE WHEN EXISTS (SELECT 1 FROM memory_assets WHERE memory_id = mem AND lifecycle_status = 'active'
                                  AND upload_status <> 'completed')
                  THEN 'pending'::memory_status_t ELSE 'active' END
     WHERE id = mem AND status <> 'tombstoned';
    UPDATE upload_sessions SET status = 'completed', uploaded_files = total_files
     WHERE memory_id = mem AND status = 'active';
  END IF;
END
$$;

-- Records that content P_SHA of file P_INO is in the store (the uploader,
-- after write-back): the version waiting for it is completed.  A version
-- never recorded (the record at close failed, or a crash came between the
-- journal entry and it) becomes the file's content when it is newer than
-- what the file has, else it is kept as a removed old version, so its
-- bytes in the store stay known.  Idempotent; a removed file is a no-op.
-- Returns 'superseded' when the version came too late to be current.
CREATE FUNCTION mvfs_uploaded(p_user uuid, p_ino bigint, p_sha text, p_size bigint, p_mime text, p_type text,
                              p_backend text, p_key text, p_mtime_sec bigint, p_mtime_nsec integer, p_seq bigint,
                              p_min_age integer, p_trash_days integer)
  RETURNS text
  LANGUAGE plpgsql
  AS $$
DECLARE
  it uuid;
  mem uuid;
  life text;
  cur_seq bigint;
  waiting uuid;
  said text := '';
BEGIN
  SELECT i.id, i.memory_id, a.lifecycle_status, coalesce(a.staged_seq, 0) INTO it, mem, life, cur_seq
    FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE i.user_id = p_user AND i.ino = p_ino;
  IF it IS NULL THEN
    RETURN '';			-- the file is gone: nothing to record
  END IF;
  SELECT id INTO waiting FROM memory_assets
   WHERE memory_item_id = it AND content_hash = p_sha AND upload_status <> 'completed' AND lifecycle_status <> 'deleted'
   ORDER BY created_at DESC LIMIT 1;
  IF waiting IS NULL AND life = 'active'
     AND NOT EXISTS (SELECT 1 FROM memory_assets WHERE memory_item_id = it AND content_hash = p_sha) THEN
    IF cur_seq > p_seq THEN
      INSERT INTO memory_assets (memory_id, memory_item_id, group_id, asset_type, content_hash, computed_by, bytes,
                                 mime_type, storage_backend, storage_key, upload_status, lifecycle_status,
                                 tombstoned_at, staged_seq)
        VALUES (mem, it, gen_random_uuid(), 'original', p_sha, 'client', p_size, p_mime, p_backend::storage_backend_t,
                p_key, 'uploading', 'tombstoned', mvault_now(), p_seq)
        RETURNING id INTO waiting;
      said := 'superseded';
    ELSE
      PERFORM mvfs_stage(p_user, p_ino, p_sha, p_size, p_mime, p_type, p_backend, p_key, p_mtime_sec, p_mtime_nsec,
                         p_seq, p_min_age, p_trash_days);
      SELECT id INTO waiting FROM memory_assets
       WHERE memory_item_id = it AND content_hash = p_sha AND upload_status <> 'completed'
         AND lifecycle_status <> 'deleted'
       ORDER BY created_at DESC LIMIT 1;
    END IF;
  END IF;
  IF waiting IS NOT NULL THEN
    PERFORM mvfs_complete(p_user, waiting, p_sha, p_size, p_mime, p_backend, p_key);
  END IF;
  RETURN said;
END
$$;

-- A whole file to the trash: its current asset (blob reference dropped, a
-- blob left with none in the deletion outbox) and its memory.  Two
-- statements for the asset: its UPDATE may wait for an upload's record that
-- makes the blob row, which the next statement's snapshot sees.
CREATE FUNCTION mvfs_tombstone_file(p_user uuid, p_asset uuid, p_memory uuid) RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  b uuid;
BEGIN
  UPDATE memory_assets SET lifecycle_status = 'tombstoned', tombstoned_at = mvault_now()
   WHERE id = p_asset AND lifecycle_status = 'active' RETURNING blob_id INTO b;
  IF b IS NOT NULL THEN
    PERFORM mvfs_release_blob(p_asset, b);
  END IF;
  UPDATE memories SET status = 'tombstoned', expires_at = NULL, updated_by = p_user WHERE id = p_memory;
END
$$;

-- Renames file P_NAME of tree folder P_FROM to P_NEWNAME in tree folder
-- P_TO of the same place (database inode numbers), in one call: the two
-- names locked in the daemon's order, a file replaced as meta_move says
-- (a fresh file's content becomes a new version of the one it replaces,
-- which takes its inode number; else the replaced one goes to the trash).
-- Returns the inode number that no longer shows (0 for none).  MV002 when
-- no file has the name (it may be a folder), MV017 over a file with
-- P_NOREPLACE, MV021 over a folder.
CREATE FUNCTION mvfs_move_tree(p_user uuid, p_from bigint, p_name text, p_to bigint, p_newname text,
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
  fresh boolean;
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
  SELECT i.id AS item, i.memory_id AS mem, i.ino, i.mode, i.mtime, i.mtime_nsec, i.atime_ns, a.id AS asset,
         a.upload_status
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
    fresh := t.upload_status <> 'pending'
             AND (SELECT count(*) FROM memory_assets WHERE memory_item_id = f.item AND variant_of_asset_id IS NULL) = 1
             AND NOT EXISTS (SELECT 1 FROM gallery_items WHERE memory_id = f.mem);
    IF fresh THEN
      -- a save: F's content becomes T's new version (meta_ns.c merge_into)
      UPDATE memory_assets SET memory_id = t.mem,
             memory_item_id = CASE WHEN memory_item_id = f.item THEN t.item ELSE memory_item_id END
       WHERE memory_id = f.mem;
      DELETE FROM memory_items WHERE id = f.item;
      UPDATE memory_items SET ino = f.ino, primary_asset_id = f.asset, mode = f.mode, mtime = f.mtime,
             mtime_nsec = f.mtime_nsec, atime_ns = f.atime_ns
       WHERE id = t.item;
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
    EXECUTE 'GRANT EXECUTE ON FUNCTION mvfs_lock_name(uuid, bigint, text), mvfs_release_blob(uuid, uuid),'
            ' mvfs_retire_version(uuid, bigint, integer, integer),'
            ' mvfs_create(uuid, bigint, text, bigint, text, integer, bigint, integer),'
            ' mvfs_stage(uuid, bigint, text, bigint, text, text, text, text, bigint, integer, bigint, integer,'
            ' integer),'
            ' mvfs_complete(uuid, uuid, text, bigint, text, text, text),'
            ' mvfs_uploaded(uuid, bigint, text, bigint, text, text, text, text, bigint, integer, bigint, integer,'
            ' integer),'
            ' mvfs_tombstone_file(uuid, uuid, uuid),'
            ' mvfs_move_tree(uuid, bigint, text, bigint, text, boolean, integer, integer) TO mvault_app';
  END IF;
END
$$;
