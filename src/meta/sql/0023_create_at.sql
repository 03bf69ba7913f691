-- 0023: files created without a round trip (issue 10; docs/DECISIONS.md,
-- "A create made here first").  A mount takes inode numbers ahead
-- (mvfs_inos), answers create(2) at once, and makes the file's rows with
-- its first close-time record, in one call (mvfs_create_staged), after the
-- close returned; the journal entry holds the name until then.

-- Inode numbers for files this mount will make, from the sequence every
-- inode number comes from.
CREATE FUNCTION mvfs_inos(p_count integer) RETURNS SETOF bigint
  LANGUAGE sql VOLATILE
  AS $$SELECT nextval('fs_ino_seq') FROM generate_series(1, least(greatest(p_count, 1), 1024))$$;

-- mvfs_create (0013) with the inode number given (P_INO; NULL: the next).
DROP FUNCTION mvfs_create(uuid, bigint, text, bigint, text, integer, bigint, integer);
CREATE FUNCTION mvfs_create(p_user uuid, p_home bigint, p_view text, p_view_ino bigint, p_name text,
                            p_mode integer, p_mtime_sec bigint, p_mtime_nsec integer, p_ino bigint DEFAULT NULL)
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
  -- an inode the mount took from fs_ino_seq (mvfs_inos): made once, so that a
  -- record made again from the mount's journal after a crash never makes a
  -- file that was made and removed since (MV114, EALREADY)
  IF p_ino IS NOT NULL THEN
    INSERT INTO idempotency_keys (user_id, route, key, response, expires_at)
      VALUES (p_user, 'mvfs_create', p_ino::text, '{}', now() + interval '30 days')
      ON CONFLICT (user_id, route, key) DO NOTHING;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'file % was made before', p_ino USING ERRCODE = 'MV114';
    END IF;
  END IF;
  PERFORM mvfs_lock_name(p_user, p_home, p_name);
  SELECT f.id, f.place INTO f_id, f_place FROM folders f WHERE f.ino = p_home;
  IF f_id IS NULL THEN
    RAISE EXCEPTION 'folder % is gone', p_home USING ERRCODE = 'MV002';
  END IF;
  -- in a gallery the daemon found the name free in the gallery itself; the
  -- tree folder the file goes to may show it as a twin
  IF p_view <> 'g' AND EXISTS (SELECT 1 FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
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
  WITH item AS (INSERT INTO memory_items (id, ino, memory_id, user_id, display_name, primary_asset_id, mode, mtime,
                                          mtime_nsec)
                VALUES (it, coalesce(p_ino, nextval('fs_ino_seq')), mem, p_user, p_name, asset, p_mode,
                        to_timestamp(p_mtime_sec), p_mtime_nsec))
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

-- A file made here first (P_INO from mvfs_inos) and its first version, as
-- mvfs_create then mvfs_stage (0016) in one call and one transaction.  The
-- times it sets are the close's (P_AT: mvault.at_ns, 0022).  Committed
-- without waiting for the WAL flush: the mount's journal entry holds the
-- name and the bytes until the upload's record, which commits
-- synchronously, and a lost record is made again from it (MV114 then).
CREATE FUNCTION mvfs_create_staged(p_user uuid, p_ino bigint, p_home bigint, p_name text, p_mode integer,
                                   p_sha text, p_size bigint, p_mime text, p_type text, p_backend text,
                                   p_key text, p_mtime_sec bigint, p_mtime_nsec integer, p_seq bigint,
                                   p_min_age integer, p_trash_days integer, p_at text)
  RETURNS void
  LANGUAGE plpgsql
  AS $$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM set_config('mvault.at_ns', coalesce(p_at, ''), true);
  PERFORM mvfs_create(p_user, p_home, '', 0, p_name, p_mode, p_mtime_sec, p_mtime_nsec, p_ino);
  PERFORM mvfs_stage(p_user, p_ino, p_sha, p_size, p_mime, p_type, p_backend, p_key, p_mtime_sec, p_mtime_nsec,
                     p_seq, p_min_age, p_trash_days, NULL);
END
$$;


-- The upload's record of a file with no rows says 'gone' (was ''): for a
-- file made here first whose rows were never made (its record lost with
-- the daemon), the mount then makes them from the journal entry's note.
-- The body is 0011's, changed in that one line.
DO $$
DECLARE
  src text := pg_get_functiondef('mvfs_uploaded(uuid, bigint, text, bigint, text, text, text, text, bigint,'
                                 ' integer, bigint, integer, integer)'::regprocedure);
  was text := src;
BEGIN
  src := replace(src, 'RETURN '''';			-- the file is gone: nothing to record',
                 'RETURN ''gone'';		-- the file is gone: nothing to record');
  IF src = was THEN
    RAISE EXCEPTION 'mvfs_uploaded is not the one 0011 made';
  END IF;
  EXECUTE src;
END
$$;
