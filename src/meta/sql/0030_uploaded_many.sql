-- 0030: upload records in batches, each cheaper (issue 10; docs/DECISIONS.md,
-- "Upload records in one round trip").
--
-- mvfs_uploaded (0011, 0023) made one upload record per call, one
-- transaction and one synchronous WAL flush each, from the uploaders'
-- threads: for 1,000 small files, 1,000 round trips and commits.
-- mvfs_uploaded_many makes up to 32 in one call and one commit; each record
-- is its own subtransaction (an exception block), so a record that fails
-- undoes only itself and the others commit: its element of the answer is
-- '!' and its SQLSTATE, and the daemon makes that one with its own call.
-- The record of each is mvfs_uploaded's, with two statements fewer in the
-- common case, measured with pg_stat_statements (track = all):
--   * the version this entry staged is almost always the file's current
--     one: the first statement reads its seq, hash and state and takes it
--     as the version waiting, without the second lookup by staged_seq
--     (0.08 ms and a row-level security check);
--   * the expired idempotency keys of the user are cleared once per call
--     (4 per record, as before), not once per record (0.26 ms a record
--     over 1,000 files: its plan is made again and again as the table grows).
-- Same answers, same rows: tests/mount/test_meta_unit.py compares them with
-- mvfs_uploaded's, which stays as it is for a daemon of the release before.

CREATE FUNCTION mvault_upload_record(p_user uuid, p_ino bigint, p_sha text, p_size bigint, p_mime text,
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
  cur uuid;
  life text;
  up text;
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
  SELECT i.id, i.memory_id, a.id, a.lifecycle_status, a.upload_status, a.content_hash, coalesce(a.staged_seq, 0)
    INTO it, mem, cur, life, up, cur_sha, cur_seq
    FROM memory_items i JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE i.user_id = p_user AND i.ino = p_ino;
  IF it IS NULL THEN
    RETURN 'gone';		-- the file is gone: nothing to record
  END IF;
  IF cur_seq = p_seq AND cur_sha = p_sha THEN
    -- the current version is the one this entry staged (a later version
    -- of the same seq and bytes cannot exist: see mvfs_uploaded)
    waiting := cur;
    staged := up <> 'completed' AND life <> 'deleted';
  ELSE
    -- the version this entry staged, if its record is there
    SELECT id, upload_status <> 'completed' AND lifecycle_status <> 'deleted' INTO waiting, staged
      FROM memory_assets
     WHERE memory_item_id = it AND staged_seq = p_seq AND content_hash = p_sha
     ORDER BY created_at DESC LIMIT 1;
  END IF;
  IF waiting IS NOT NULL AND NOT staged THEN
    waiting := NULL;		-- completed (or gone) already
  ELSIF waiting IS NULL THEN
    -- never recorded, or recorded as "the same bytes again" (no version of
    -- its own): the current version may be these bytes, waiting
    IF cur_sha = p_sha AND up <> 'completed' AND life = 'active' THEN
      waiting := cur;
    END IF;
    IF waiting IS NULL AND life = 'active' AND cur_seq < p_seq AND cur_sha IS DISTINCT FROM p_sha THEN
      -- its close-time record was lost or never made: make it (0011)
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
  RETURN said;
END
$$;

-- The upload records of journal entries (the i-th element of each array is
-- the i-th entry's), in their order, in one transaction; the answer's i-th
-- element is the i-th record's: '', 'superseded', 'gone' (as
-- mvfs_uploaded's), or '!' and the SQLSTATE of a record that failed and was
-- undone.  The caller sets synchronous_commit on: the mount drops the
-- journal entries once this has committed.
CREATE FUNCTION mvfs_uploaded_many(p_user uuid, p_min_age integer, p_trash_days integer, p_ino bigint[],
                                   p_seq bigint[], p_sha text[], p_size bigint[], p_mime text[], p_type text[],
                                   p_backend text[], p_key text[], p_mtime_sec bigint[], p_mtime_nsec integer[])
  RETURNS text[]
  LANGUAGE plpgsql
  AS $$
DECLARE
  n integer := coalesce(cardinality(p_ino), 0);
  said text[] := '{}';
BEGIN
  IF n > 32 THEN
    -- a subtransaction each: past 64 every snapshot of every session
    -- would have to look them up (the cache of subtransactions overflows)
    RAISE EXCEPTION 'at most 32 upload records a call' USING ERRCODE = 'MV007';
  END IF;
  FOR i IN 1 .. n LOOP
    BEGIN
      said[i] := mvault_upload_record(p_user, p_ino[i], p_sha[i], p_size[i], p_mime[i], p_type[i], p_backend[i],
                                      p_key[i], p_mtime_sec[i], p_mtime_nsec[i], p_seq[i], p_min_age,
                                      p_trash_days);
    EXCEPTION WHEN OTHERS THEN
      said[i] := '!' || SQLSTATE;
    END;
  END LOOP;
  DELETE FROM idempotency_keys WHERE id IN (SELECT id FROM idempotency_keys
                                             WHERE expires_at < now() AND user_id = p_user LIMIT 4 * n);
  RETURN said;
END
$$;
