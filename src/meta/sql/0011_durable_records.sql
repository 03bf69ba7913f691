-- 0011: the journal is where a closed file is durable; the database record
-- of a close may be lost in a crash and is made again from the journal,
-- exactly once.
--
-- At close the daemon seals the bytes (fsync'd, journalled) and then calls
-- mvfs_stage with an asynchronous commit (the caller sets
-- synchronous_commit off for that one transaction): the record is visible
-- at once, but a crash of PostgreSQL (or of the machine) in the next few
-- hundred milliseconds may forget it.  The journal entry stays until
-- mvfs_uploaded has committed, synchronously, and that commit's WAL flush
-- covers every earlier record: once the entry is gone, so is the risk.
--
-- So mvfs_uploaded must tell, for one journal entry, whether its close-time
-- record exists, and must never make its own record twice when the entry is
-- replayed after a crash (its commit done, the entry not yet removed):
--   * the version a journal entry staged carries the entry's sequence
--     number (memory_assets.staged_seq), so "was this entry staged?" is
--     exact, where the earlier test (an asset of the same content) was not:
--     a file saved as A, then B, then A again whose last record was lost
--     found the first A and stayed B;
--   * the upload record of an entry is remembered in the seed's
--     idempotency_keys (route 'mvfs_uploaded', key ino:seq:sha256, the
--     entry's own name) with the answer it gave; a replay returns that
--     answer and changes nothing.  Keys expire after 7 days (a journal entry
--     is removed right after its record commits; a week covers any crash
--     and restart) and each upload record clears a few expired ones.

CREATE OR REPLACE FUNCTION mvfs_uploaded(p_user uuid, p_ino bigint, p_sha text, p_size bigint, p_mime text,
                                         p_type text, p_backend text, p_key text, p_mtime_sec bigint,
                                         p_mtime_nsec integer, p_seq bigint, p_min_age integer, p_trash_days integer)
  RETURNS text
  LANGUAGE plpgsql
  AS $$
DECLARE
  entry text := p_ino || ':' || p_seq || ':' || p_sha;
  done jsonb;
  it uuid;
  mem uuid;
  life text;
  cur_sha text;
  cur_seq bigint;
  waiting uuid;
  staged boolean;
  said text := '';
BEGIN
  SELECT response INTO done FROM idempotency_keys
   WHERE user_id = p_user AND route = 'mvfs_uploaded' AND key = entry;
  IF done IS NOT NULL THEN
    RETURN coalesce(done->>'said', '');	-- a replay: recorded already
  END IF;
  SELECT i.id, i.memory_id, a.lifecycle_status, a.content_hash, coalesce(a.staged_seq, 0)
    INTO it, mem, life, cur_sha, cur_seq
    FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE i.user_id = p_user AND i.ino = p_ino;
  IF it IS NULL THEN
    RETURN '';			-- the file is gone: nothing to record
  END IF;
  -- the version this entry staged, if its record is there
  SELECT id, upload_status <> 'completed' AND lifecycle_status <> 'deleted' INTO waiting, staged
    FROM memory_assets
   WHERE memory_item_id = it AND staged_seq = p_seq AND content_hash = p_sha
   ORDER BY created_at DESC LIMIT 1;
  IF waiting IS NOT NULL AND NOT staged THEN
    waiting := NULL;		-- completed (or gone) already
  ELSIF waiting IS NULL THEN
    -- never recorded, or recorded as "the same bytes again" (no version of
    -- its own): the current version may be these bytes, waiting
    SELECT a.id INTO waiting FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
     WHERE i.id = it AND a.content_hash = p_sha AND a.upload_status <> 'completed'
       AND a.lifecycle_status = 'active';
    IF waiting IS NULL AND life = 'active' AND cur_seq < p_seq AND cur_sha IS DISTINCT FROM p_sha THEN
      -- its close-time record was lost (a crash after an asynchronous
      -- commit) or never made (the database was away at close): make it.
      -- (Not when the current version is these bytes: that record was
      -- "the same bytes again", and making it now would put back the
      -- mtime of that close over any set since.)
      PERFORM mvfs_stage(p_user, p_ino, p_sha, p_size, p_mime, p_type, p_backend, p_key, p_mtime_sec,
                         p_mtime_nsec, p_seq, p_min_age, p_trash_days);
      SELECT a.id INTO waiting FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
       WHERE i.id = it AND a.content_hash = p_sha AND a.upload_status <> 'completed';
    ELSIF waiting IS NULL AND life = 'active'
          AND NOT EXISTS (SELECT 1 FROM memory_assets WHERE memory_item_id = it AND content_hash = p_sha) THEN
      -- a newer version was written meanwhile: this one is kept as a
      -- removed old version, never made current again
      INSERT INTO memory_assets (memory_id, memory_item_id, group_id, asset_type, content_hash, computed_by, bytes,
                                 mime_type, storage_backend, storage_key, upload_status, lifecycle_status,
                                 tombstoned_at, staged_seq)
        VALUES (mem, it, gen_random_uuid(), 'original', p_sha, 'client', p_size, p_mime, p_backend::storage_backend_t,
                p_key, 'uploading', 'tombstoned', mvault_now(), p_seq)
        RETURNING id INTO waiting;
      said := 'superseded';
    END IF;
  END IF;
  IF waiting IS NOT NULL THEN
    PERFORM mvfs_complete(p_user, waiting, p_sha, p_size, p_mime, p_backend, p_key);
  END IF;
  INSERT INTO idempotency_keys (user_id, route, key, response, expires_at)
    VALUES (p_user, 'mvfs_uploaded', entry, jsonb_build_object('said', said, 'asset', waiting),
            now() + interval '7 days');
  DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM idempotency_keys
                                             WHERE expires_at < now() AND user_id = p_user LIMIT 4);
  RETURN said;
END
$$;

-- An asset is completed once.  Two journal entries of the same bytes of one
-- file (saved twice while the store was away: the second close had nothing
-- new to record) both found the version waiting and both completed it: its
-- blob got two references for one asset and could never be deleted.
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
