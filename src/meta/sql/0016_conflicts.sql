-- 0016: two writers of one name on two mounts never lose a closed write
-- (issue 14).  A create of a name whose file is pending (made, never
-- closed) removes that file as left by a dead writer (meta_file_abort); but
-- its writer may be alive on another mount and close it a moment later.
-- The removal was one DELETE whose NOT EXISTS (no content yet) was judged on
-- a snapshot taken before that close's record committed, so it removed a
-- file whose content had just been recorded: both cp returned 0 and one
-- file's bytes were nowhere.  Now the record (mvfs_stage) and the removal
-- (mvfs_abort) both lock the memory's row first, and the removal looks for
-- content only once it holds the lock.  A close that finds its file gone
-- keeps its bytes as a conflict copy (fs_file.c); a create that finds the
-- name held by a live writer's closed file writes a conflict copy (fs_open.c).
-- Two writers rewriting one existing file: the last close wins, and the
-- version it replaced, if another writer recorded it after this one
-- started, stays in the trash (not only when older than version_min_age).

-- P_BASE is the version the writer started from (NULL: not known): when
-- another version is current by now -- another mount's writer closed the
-- file meanwhile -- the one replaced here is kept in the trash whatever its
-- age (P_MIN_AGE is for a person's own saves).
DROP FUNCTION mvfs_stage(uuid, bigint, text, bigint, text, text, text, text, bigint, integer, bigint, integer, integer);
CREATE FUNCTION mvfs_stage(p_user uuid, p_ino bigint, p_sha text, p_size bigint, p_mime text, p_type text,
                           p_backend text, p_key text, p_mtime_sec bigint, p_mtime_nsec integer, p_seq bigint,
                           p_min_age integer, p_trash_days integer, p_base text DEFAULT NULL)
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
  -- the memory's row first: an mvfs_abort of this file (another mount making
  -- the name anew) either ran before, and the file is gone below, or waits
  -- and then finds this content
  PERFORM 1 FROM memories m JOIN memory_items i ON i.memory_id = m.id
   WHERE i.user_id = p_user AND i.ino = p_ino FOR UPDATE OF m;
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
    PERFORM mvfs_retire_version(cur, NULL,
                                CASE WHEN p_base IS NOT NULL AND cur_sha IS DISTINCT FROM p_base THEN 0
                                     ELSE p_min_age END, p_trash_days);
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

-- Removes file P_INO if it never had content: every row its create made
-- goes.  Returns whether it did.
CREATE FUNCTION mvfs_abort(p_user uuid, p_ino bigint) RETURNS boolean
  LANGUAGE plpgsql
  AS $$
DECLARE
  mem uuid;
BEGIN
  SELECT m.id INTO mem FROM memories m JOIN memory_items i ON i.memory_id = m.id
   WHERE i.user_id = p_user AND i.ino = p_ino FOR UPDATE OF m;
  -- a statement of its own: it sees a record committed while we waited
  DELETE FROM memories WHERE id = mem
     AND NOT EXISTS (SELECT 1 FROM memory_assets a WHERE a.memory_id = mem AND a.content_hash IS NOT NULL);
  RETURN FOUND;
END
$$;

-- 0015's policy on blobs came after 0014 made every policy call
-- mvault_uid() once per statement: the same for it.
DO $$
DECLARE
  p record;
BEGIN
  FOR p IN SELECT schemaname, tablename, policyname, qual, with_check FROM pg_policies
            WHERE schemaname = 'public' AND tablename = 'blobs'
              AND qual LIKE '%mvault_uid()%' AND qual NOT LIKE '%SELECT mvault_uid()%'
  LOOP
    EXECUTE format('ALTER POLICY %I ON %I.%I', p.policyname, p.schemaname, p.tablename)
      || ' USING (' || replace(p.qual, 'mvault_uid()', '(SELECT mvault_uid())') || ')'
      || CASE WHEN p.with_check IS NOT NULL
              THEN ' WITH CHECK (' || replace(p.with_check, 'mvault_uid()', '(SELECT mvault_uid())') || ')'
              ELSE '' END;
  END LOOP;
END
$$;
