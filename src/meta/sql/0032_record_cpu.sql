-- 0032: the server's CPU per small file (issue 10; docs/DECISIONS.md,
-- "The database's CPU per file").  Same rows and answers; less work for
-- each of them:
--   * the folder touches are PL/pgSQL: as SQL functions that cannot be
--     inlined (an UPDATE), PostgreSQL 15 parsed, rewrote and planned their
--     UPDATE at every call (a trigger's PERFORM is a new executor each
--     time, and a SQL function keeps its plan only in that executor);
--   * triggers that do nothing for most rows say so in a WHEN clause, so
--     PostgreSQL neither queues nor calls them: the variant jobs (only
--     images) and the collection counts (only rows in a collection);
--   * the upload session's completion looks the session up by its memory
--     (row-level security's user and the status matched every session in
--     flight, scanned one by one).
-- The records' own functions follow below.

CREATE OR REPLACE FUNCTION mvault_folder_touch(p_folder uuid) RETURNS void
  LANGUAGE plpgsql
  AS $$
BEGIN
  UPDATE folders SET mtime_ns = mvault_ns(), ctime_ns = mvault_ns() WHERE id = p_folder;
END
$$;

CREATE OR REPLACE FUNCTION mvault_memory_folder_touch(p_memory uuid) RETURNS void
  LANGUAGE plpgsql
  AS $$
BEGIN
  UPDATE folders SET mtime_ns = mvault_ns(), ctime_ns = mvault_ns()
   WHERE id IN (SELECT folder_id FROM user_library WHERE memory_id = p_memory
                UNION ALL SELECT folder_id FROM workspace_assets WHERE memory_id = p_memory);
END
$$;

-- mvault_enqueue_variants (0005) checks the same of NEW first; OLD's part
-- (an UPDATE that makes the upload completed) stays in the function, as a
-- WHEN of an INSERT OR UPDATE trigger cannot name OLD.
DROP TRIGGER memory_assets_enqueue_variants ON memory_assets;
CREATE TRIGGER memory_assets_enqueue_variants
  AFTER INSERT OR UPDATE OF upload_status ON memory_assets
  FOR EACH ROW
  WHEN (NEW.variant_of_asset_id IS NULL AND NEW.upload_status = 'completed'
        AND NEW.lifecycle_status = 'active' AND NEW.processing_status = 'pending'
        AND NEW.mime_type LIKE 'image/%' AND NEW.content_hash IS NOT NULL)
  EXECUTE FUNCTION mvault_enqueue_variants();

-- update_collection_asset_count (seed) changes a count only for a row in a
-- collection; one trigger a kind of change, each with that test as its WHEN
-- (the insert's keeps the name; the names sort where the one trigger's did,
-- the same order among the others)
DROP TRIGGER trigger_update_collection_asset_count ON user_library;
CREATE TRIGGER trigger_update_collection_asset_count
  AFTER INSERT ON user_library
  FOR EACH ROW WHEN (NEW.collection_id IS NOT NULL)
  EXECUTE FUNCTION update_collection_asset_count();
CREATE TRIGGER trigger_update_collection_asset_count_del
  AFTER DELETE ON user_library
  FOR EACH ROW WHEN (OLD.collection_id IS NOT NULL)
  EXECUTE FUNCTION update_collection_asset_count();
CREATE TRIGGER trigger_update_collection_asset_count_upd
  AFTER UPDATE OF collection_id ON user_library
  FOR EACH ROW WHEN (OLD.collection_id IS DISTINCT FROM NEW.collection_id)
  EXECUTE FUNCTION update_collection_asset_count();

-- 0015's body; the session is found by its memory
CREATE OR REPLACE FUNCTION mvfs_complete(p_user uuid, p_asset uuid, p_sha text, p_size bigint, p_mime text, p_backend text,
                                         p_key text)
  RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  life text;
  done text;
  mem uuid;
  active boolean;
  b uuid;
  refs integer;
BEGIN
  SELECT lifecycle_status, memory_id, upload_status INTO life, mem, done FROM memory_assets
   WHERE id = p_asset FOR UPDATE;
  IF life IS NULL OR life = 'deleted' OR done = 'completed' THEN
    RETURN;		-- completed once: one asset holds one reference to its blob
  END IF;
  active := life = 'active';
  INSERT INTO blobs (user_id, content_hash, storage_backend, storage_key, bytes, mime_type, ref_count)
    VALUES (p_user, p_sha, p_backend::storage_backend_t, p_key, p_size, p_mime, CASE WHEN active THEN 1 ELSE 0 END)
    ON CONFLICT (user_id, content_hash) DO UPDATE
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
    -- (status = 'active') IS TRUE, not status = 'active': an index
    -- condition on the status made the planner take (user_id, status),
    -- every session of the user in flight, instead of the memory's one
    UPDATE upload_sessions SET status = 'completed', uploaded_files = total_files
     WHERE memory_id = mem AND (status = 'active') IS TRUE;
  END IF;
END
$$;

-- The upload records of a batch at once.  Most records of a batch are the
-- plain case: the file's current version is the one the entry staged,
-- active, its upload not recorded yet, no key for the entry.  For those
-- mvault_upload_record runs eleven statements each (and a subtransaction),
-- each with its own executor, row-level security's user, and plan lookups:
-- here each of those statements runs once for all of them, row by row the
-- same changes (the triggers fire per row as before).  A record is taken
-- only when no other record of the batch names its file, its memory or its
-- bytes, so the order of the records, which the records taken alone keep,
-- changes nothing.  Returns which records it made (NULL: none); the caller
-- makes the others one by one, and all of them one by one when this fails.
CREATE FUNCTION mvault_upload_records_plain(p_user uuid, p_ino bigint[], p_seq bigint[], p_sha text[],
                                            p_size bigint[], p_mime text[], p_backend text[], p_key text[])
  RETURNS boolean[]
  LANGUAGE plpgsql
  -- planned once a session: with custom plans (PostgreSQL's choice for
  -- these array arguments) each call planned its statements again, which
  -- cost more than the records themselves in batches of two or four
  SET plan_cache_mode = force_generic_plan
  AS $$
DECLARE
  ks integer[];
  assets uuid[];
  mems uuid[];
  bids uuid[];
  fresh uuid[];
  made boolean[];
BEGIN
  -- the plain records, their current versions locked as mvfs_complete
  -- locks them (a version changed meanwhile is looked at again, and is
  -- then no longer plain)
  WITH r AS (SELECT * FROM unnest(p_ino, p_seq, p_sha) WITH ORDINALITY AS r(ino, seq, sha, k)),
       c AS (SELECT r.k, a.id AS asset, i.memory_id
               FROM r JOIN memory_items i ON i.user_id = p_user AND i.ino = r.ino
               JOIN memory_assets a ON a.id = i.primary_asset_id
              WHERE coalesce(a.staged_seq, 0) = r.seq AND a.content_hash = r.sha
                AND a.upload_status <> 'completed' AND a.lifecycle_status = 'active'
                AND (SELECT count(*) FROM r o WHERE o.ino = r.ino OR o.sha = r.sha) = 1
                AND (SELECT count(*) FROM memory_items o WHERE o.memory_id = i.memory_id
                        AND o.user_id = p_user AND o.ino = ANY (p_ino)) = 1
                -- a probe of the key's index for each (as NOT EXISTS, the
                -- generic plan was a hash anti join over all the user's keys)
                AND (SELECT 1 FROM idempotency_keys x
                      WHERE x.user_id = p_user AND x.route = 'mvfs_uploaded'
                        AND x.key = r.ino || ':' || r.seq || ':' || r.sha) IS NULL
                FOR UPDATE OF a)
  SELECT array_agg(c.k ORDER BY c.k), array_agg(c.asset ORDER BY c.k), array_agg(c.memory_id ORDER BY c.k)
    INTO ks, assets, mems FROM c;
  IF ks IS NULL THEN
    RETURN NULL;
  END IF;
  -- mvfs_complete's statements, each for all of them (active versions:
  -- one reference each)
  WITH b AS (INSERT INTO blobs AS bl (user_id, content_hash, storage_backend, storage_key, bytes, mime_type, ref_count)
               SELECT p_user, p_sha[k], p_backend[k]::storage_backend_t, p_key[k], p_size[k], p_mime[k], 1
                 FROM unnest(ks) k ORDER BY k
               ON CONFLICT (user_id, content_hash) DO UPDATE
                 SET ref_count = bl.ref_count + 1, last_accessed_at = now()
               RETURNING bl.content_hash, bl.id, bl.ref_count)
  SELECT array_agg(b.id ORDER BY k), array_agg(b.id ORDER BY k) FILTER (WHERE b.ref_count = 1)
    INTO bids, fresh FROM unnest(ks) k JOIN b ON b.content_hash = p_sha[k];
  UPDATE memory_assets a SET blob_id = x.b, upload_status = 'completed'
    FROM unnest(assets, bids) AS x(id, b) WHERE a.id = x.id;
  IF fresh IS NOT NULL THEN
    UPDATE asset_delete_jobs SET status = 'cancelled' WHERE blob_id = ANY (fresh) AND status = 'pending';
  END IF;
  UPDATE memories m SET updated_by = p_user, status =
           CASE WHEN EXISTS (SELECT 1 FROM memory_assets x WHERE x.memory_id = m.id AND x.lifecycle_status = 'active'
                                AND x.upload_status <> 'completed')
                THEN 'pending'::memory_status_t ELSE 'active' END
   WHERE m.id = ANY (mems) AND m.status <> 'tombstoned';
  UPDATE upload_sessions SET status = 'completed', uploaded_files = total_files
   WHERE memory_id = ANY (mems) AND (status = 'active') IS TRUE;
  -- mvault_upload_record's key: said '', the version it completed
  INSERT INTO idempotency_keys (user_id, route, key, response, expires_at)
    SELECT p_user, 'mvfs_uploaded', p_ino[k] || ':' || p_seq[k] || ':' || p_sha[k],
           jsonb_build_object('said', '', 'asset', assets[j]), now() + interval '7 days'
      FROM unnest(ks) WITH ORDINALITY AS x(k, j) ORDER BY j;
  made := array_fill(false, ARRAY[cardinality(p_ino)]);
  FOR j IN 1 .. cardinality(ks) LOOP
    made[ks[j]] := true;
  END LOOP;
  RETURN made;
END
$$;

-- 0030's, with the plain records made at once first
CREATE OR REPLACE FUNCTION mvfs_uploaded_many(p_user uuid, p_min_age integer, p_trash_days integer, p_ino bigint[],
                                              p_seq bigint[], p_sha text[], p_size bigint[], p_mime text[],
                                              p_type text[], p_backend text[], p_key text[], p_mtime_sec bigint[],
                                              p_mtime_nsec integer[])
  RETURNS text[]
  LANGUAGE plpgsql
  AS $$
DECLARE
  n integer := coalesce(cardinality(p_ino), 0);
  said text[] := '{}';
  made boolean[];
BEGIN
  IF n > 32 THEN
    -- a subtransaction each: past 64 every snapshot of every session
    -- would have to look them up (the cache of subtransactions overflows)
    RAISE EXCEPTION 'at most 32 upload records a call' USING ERRCODE = 'MV007';
  END IF;
  IF n > 0 THEN
    BEGIN
      made := mvault_upload_records_plain(p_user, p_ino, p_seq, p_sha, p_size, p_mime, p_backend, p_key);
    EXCEPTION WHEN OTHERS THEN
      made := NULL;		-- undone: each record alone, as below
    END;
  END IF;
  FOR i IN 1 .. n LOOP
    IF made[i] THEN
      said[i] := '';
      CONTINUE;
    END IF;
    BEGIN
      said[i] := mvault_upload_record(p_user, p_ino[i], p_sha[i], p_size[i], p_mime[i], p_type[i], p_backend[i],
                                      p_key[i], p_mtime_sec[i], p_mtime_nsec[i], p_seq[i], p_min_age,
                                      p_trash_days);
    EXCEPTION WHEN OTHERS THEN
      said[i] := '!' || SQLSTATE;
    END;
  END LOOP;
  -- the oldest first: the order makes the plan walk the expiry's index
  -- from its start (only keys already expired), whatever the planner
  -- thinks of the user's share of the table (0030 took any, and its plan
  -- was made again and again, sometimes over all the user's keys)
  DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM idempotency_keys
                                             WHERE expires_at < now() AND user_id = p_user
                                             ORDER BY expires_at LIMIT 4 * n);
  RETURN said;
END
$$;

-- 0029's, in six statements fewer: the two settings in one; the folder and the two names it must
-- not meet in one statement, and the item, the version, the upload session
-- and the library or workspace row in one (data-modifying CTEs; the memory
-- stays a statement of its own, which they come after: the version's
-- row-level security looks for its memory, and a statement does not see
-- the rows its own CTEs insert).  Same checks in the same order, same rows.
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
  file_there boolean;
  folder_there boolean;
  mem uuid;
  it uuid := gen_random_uuid();
  asset uuid := gen_random_uuid();
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true), set_config('mvault.at_ns', coalesce(p_at, ''), true);
  -- made once: a record made again from the mount's journal after a crash
  -- never makes a file that was made and removed since (MV114, EALREADY)
  INSERT INTO idempotency_keys (user_id, route, key, response, expires_at)
    VALUES (p_user, 'mvfs_create', p_ino::text, '{}', now() + interval '30 days')
    ON CONFLICT (user_id, route, key) DO NOTHING;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'file % was made before', p_ino USING ERRCODE = 'MV114';
  END IF;
  PERFORM mvfs_lock_name(p_user, p_home, p_name);
  SELECT f.id, f.place,
         EXISTS (SELECT 1 FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
                  WHERE i.user_id = p_user AND i.display_name = p_name AND a.lifecycle_status = 'active'
                    AND (EXISTS (SELECT 1 FROM user_library x WHERE x.memory_id = i.memory_id AND x.folder_id = f.id)
                         OR EXISTS (SELECT 1 FROM workspace_assets x WHERE x.memory_id = i.memory_id
                                    AND x.folder_id = f.id AND x.expires_at > mvault_now()))),
         EXISTS (SELECT 1 FROM folders s WHERE s.parent_id = f.id AND s.name = p_name)
    INTO f_id, f_place, file_there, folder_there
    FROM folders f WHERE f.ino = p_home;
  IF f_id IS NULL THEN
    RAISE EXCEPTION 'folder % is gone', p_home USING ERRCODE = 'MV002';
  END IF;
  IF file_there THEN
    RAISE EXCEPTION 'a file is called %', p_name USING ERRCODE = 'MV017';
  END IF;
  IF folder_there THEN
    RAISE EXCEPTION 'a folder is called %', p_name USING ERRCODE = 'MV021';
  END IF;
  -- as mvfs_stage leaves them: no expiry (the bytes are staged), the type
  -- the content says, pending until the upload
  INSERT INTO memories (user_id, type, title, status, expires_at, created_by, updated_by)
    VALUES (p_user, p_type::memory_type_t, p_name, 'pending', NULL, p_user, p_user)
    RETURNING id INTO mem;
  IF f_place = 'library' THEN
    WITH item AS (INSERT INTO memory_items (id, ino, memory_id, user_id, display_name, primary_asset_id, mode, mtime,
                                            mtime_nsec, atime_ns)
                  VALUES (it, p_ino, mem, p_user, p_name, asset, p_mode, to_timestamp(p_mtime_sec), p_mtime_nsec,
                          p_atime_ns)),
         version AS (INSERT INTO memory_assets (id, memory_id, memory_item_id, group_id, asset_type, content_hash,
                                                computed_by, bytes, mime_type, storage_backend, storage_key,
                                                upload_status, staged_seq)
                     VALUES (asset, mem, it, gen_random_uuid(), 'original', p_sha, 'client', p_size, p_mime,
                             p_backend::storage_backend_t, p_key, 'uploading', p_seq)),
         session AS (INSERT INTO upload_sessions (user_id, memory_id, session_token, total_files, expires_at)
                     VALUES (p_user, mem, gen_random_uuid()::text, 1, now() + interval '24 hours'))
    INSERT INTO user_library (user_id, memory_id, asset_type, storage_path, file_size_bytes, mime_type, folder_id)
      VALUES (p_user, mem, p_type, p_key, p_size, p_mime, f_id);
  ELSE
    WITH item AS (INSERT INTO memory_items (id, ino, memory_id, user_id, display_name, primary_asset_id, mode, mtime,
                                            mtime_nsec, atime_ns)
                  VALUES (it, p_ino, mem, p_user, p_name, asset, p_mode, to_timestamp(p_mtime_sec), p_mtime_nsec,
                          p_atime_ns)),
         version AS (INSERT INTO memory_assets (id, memory_id, memory_item_id, group_id, asset_type, content_hash,
                                                computed_by, bytes, mime_type, storage_backend, storage_key,
                                                upload_status, staged_seq)
                     VALUES (asset, mem, it, gen_random_uuid(), 'original', p_sha, 'client', p_size, p_mime,
                             p_backend::storage_backend_t, p_key, 'uploading', p_seq)),
         session AS (INSERT INTO upload_sessions (user_id, memory_id, session_token, total_files, expires_at)
                     VALUES (p_user, mem, gen_random_uuid()::text, 1, now() + interval '24 hours'))
    INSERT INTO workspace_assets (user_id, memory_id, asset_type, temp_storage_path, file_size_bytes, mime_type,
                                  expires_at, folder_id)
      VALUES (p_user, mem, p_type, p_key, p_size, p_mime, mvault_now() + interval '7 days', f_id);
  END IF;
END
$$;

-- 0027's storage-edge trigger of an uploaded version: the memory's type is
-- read by the upsert itself (one statement a version instead of two); no
-- memory, no edge and no pins, as before.
CREATE OR REPLACE FUNCTION mvault_edge_asset() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
DECLARE
  be backend_t := NEW.storage_backend::text::backend_t;
BEGIN
  INSERT INTO storage_edges AS e (memory_id, memory_type, artifact, backend, present, location, content_hash,
                                  size_bytes, sync_state, last_synced_at)
    SELECT NEW.memory_id, m.type, 'asset', be, true, NEW.storage_key, NEW.content_hash, NEW.bytes, 'idle', now()
      FROM memories m WHERE m.id = NEW.memory_id
    ON CONFLICT (memory_id, memory_type, artifact, backend) DO UPDATE
       SET present = true, location = EXCLUDED.location, content_hash = EXCLUDED.content_hash,
           size_bytes = EXCLUDED.size_bytes, sync_state = 'idle', sync_error = NULL, last_synced_at = now();
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  PERFORM mvault_pin_sync(NEW.memory_id, p.backend) FROM mvault_pins_of(NEW.memory_id) p WHERE p.backend <> be;
  RETURN NULL;
END
$$;

-- 0006's trigger function of library and workspace rows: the folder's
-- UPDATE of mvault_folder_touch made here, not through a call of it (one
-- statement and one function call fewer a file made)
CREATE OR REPLACE FUNCTION mvault_place_touch() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE folders SET mtime_ns = mvault_ns(), ctime_ns = mvault_ns() WHERE id = OLD.folder_id;
  END IF;
  IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.folder_id IS DISTINCT FROM OLD.folder_id) THEN
    UPDATE folders SET mtime_ns = mvault_ns(), ctime_ns = mvault_ns() WHERE id = NEW.folder_id;
  END IF;
  RETURN NULL;
END
$$;
