-- 0013: a file created in a gallery never collides with a library name the
-- gallery does not show (issue 11).  open(O_CREAT) of galleries/G/a.jpg
-- got EEXIST when library/ had an a.jpg outside G, though G showed no
-- such file: lookup said ENOENT and create said EEXIST.  Now the new file
-- is made; G shows it as a.jpg, and library/ shows both, the older keeping
-- its name and the new one as a twin (a~<hex>.jpg, as for twins made by the
-- web application).  Only the name check of mvfs_create (0009) changes.

-- Creates a pending file called P_NAME in tree folder P_HOME (database
-- inode), in collection or gallery P_VIEW_INO too when P_VIEW is 'c' or
-- 'g': memory, item, original asset (upload pending), upload session and
-- place rows.  Returns the new file's inode, ids and times.
CREATE OR REPLACE FUNCTION mvfs_create(p_user uuid, p_home bigint, p_view text, p_view_ino bigint, p_name text,
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
