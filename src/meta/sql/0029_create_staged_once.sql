-- 0029: the close-time record of a file made here first writes each of its
-- rows once (issue 10; docs/DECISIONS.md, "Close-time records in one round
-- trip").  0023/0028's mvfs_create_staged ran mvfs_create, then mvfs_stage,
-- which found the rows just inserted and updated five of them (asset,
-- memory, library or workspace row, the item's mtime, then its atime): 22
-- statements and about 2.8 ms of server time per file, measured with
-- pg_stat_statements (track = all) over 1,000 files.  This form inserts
-- the rows as mvfs_stage would have left them.  The checks, the locks and
-- the errors are mvfs_create's (0023) with the view it is always given here
-- (none: a tree folder); mvfs_stage's own checks cannot fail on rows this
-- call made.  Same signature, so CREATE OR REPLACE keeps its grants; the
-- 17-argument form (0023) stays as it is, for a daemon of the release before.
CREATE OR REPLACE FUNCTION mvfs_create_staged(p_user uuid, p_ino bigint, p_home bigint, p_name text,
                                              p_mode integer, p_sha text, p_size bigint, p_mime text,
                                              p_type text, p_backend text, p_key text, p_mtime_sec bigint,
                                              p_mtime_nsec integer, p_seq bigint, p_min_age integer,
                                              p_trash_days integer, p_at text, p_atime_ns bigint)
  RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  f_id uuid;
  f_place text;
  mem uuid;
  it uuid := gen_random_uuid();
  asset uuid := gen_random_uuid();
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  PERFORM set_config('mvault.at_ns', coalesce(p_at, ''), true);
  -- made once: a record made again from the mount's journal after a crash
  -- never makes a file that was made and removed since (MV114, EALREADY)
  INSERT INTO idempotency_keys (user_id, route, key, response, expires_at)
    VALUES (p_user, 'mvfs_create', p_ino::text, '{}', now() + interval '30 days')
    ON CONFLICT (user_id, route, key) DO NOTHING;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'file % was made before', p_ino USING ERRCODE = 'MV114';
  END IF;
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
  -- as mvfs_stage leaves them: no expiry (the bytes are staged), the type
  -- the content says, pending until the upload
  INSERT INTO memories (user_id, type, title, status, expires_at, created_by, updated_by)
    VALUES (p_user, p_type::memory_type_t, p_name, 'pending', NULL, p_user, p_user)
    RETURNING id INTO mem;
  WITH item AS (INSERT INTO memory_items (id, ino, memory_id, user_id, display_name, primary_asset_id, mode, mtime,
                                          mtime_nsec, atime_ns)
                VALUES (it, p_ino, mem, p_user, p_name, asset, p_mode, to_timestamp(p_mtime_sec), p_mtime_nsec,
                        p_atime_ns))
  INSERT INTO memory_assets (id, memory_id, memory_item_id, group_id, asset_type, content_hash, computed_by, bytes,
                             mime_type, storage_backend, storage_key, upload_status, staged_seq)
    VALUES (asset, mem, it, gen_random_uuid(), 'original', p_sha, 'client', p_size, p_mime,
            p_backend::storage_backend_t, p_key, 'uploading', p_seq);
  INSERT INTO upload_sessions (user_id, memory_id, session_token, total_files, expires_at)
    VALUES (p_user, mem, gen_random_uuid()::text, 1, now() + interval '24 hours');
  IF f_place = 'library' THEN
    INSERT INTO user_library (user_id, memory_id, asset_type, storage_path, file_size_bytes, mime_type, folder_id)
      VALUES (p_user, mem, p_type, p_key, p_size, p_mime, f_id);
  ELSE
    INSERT INTO workspace_assets (user_id, memory_id, asset_type, temp_storage_path, file_size_bytes, mime_type,
                                  expires_at, folder_id)
      VALUES (p_user, mem, p_type, p_key, p_size, p_mime, mvault_now() + interval '7 days', f_id);
  END IF;
END
$$;
