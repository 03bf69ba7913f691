-- 0020: a sweep no longer hides the queue from claims (issue 14, workers
-- on many machines).
--
-- Every worker process (and every mount with job threads) sweeps every
-- jobs_interval.  mvault_jobs_sweep enqueued due work with INSERT ... ON
-- CONFLICT DO UPDATE ... WHERE status = 'completed', and ON CONFLICT DO
-- UPDATE locks every conflicting row, updated or not: each job already
-- queued for work still due (every pending process_assets job: its image
-- is still 'pending') was locked until the sweep committed, and claims,
-- which SKIP LOCKED, found nothing and their workers went idle until the
-- next wake-up.  The larger the backlog, the longer each sweep and the more
-- workers sweeping, the more of the time the whole backlog was hidden.
-- Now the wake-up of completed jobs is an UPDATE (it locks the rows it
-- changes only) and the insert is ON CONFLICT DO NOTHING (it locks none).
-- The rest of the function is 0005's.

CREATE OR REPLACE FUNCTION mvault_jobs_sweep(p_trash_days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
  uid uuid := mvault_uid();
  grace interval := make_interval(days => p_trash_days);
  n integer := 0;
  k integer;
BEGIN
  WITH stale AS (
    UPDATE background_jobs
       SET status = CASE WHEN retry_count + 1 > max_retries THEN 'failed' ELSE 'retry' END,
           completed_at = CASE WHEN retry_count + 1 > max_retries THEN mvault_now() END,
           retry_count = retry_count + 1, run_at = mvault_now(), locked_at = NULL, locked_by = NULL,
           error = 'its worker (' || coalesce(locked_by, '?') || ') gave no answer within '
                   || coalesce(visibility_timeout, 300) || ' s'
     WHERE status = 'processing'
       AND locked_at < mvault_now() - make_interval(secs => coalesce(visibility_timeout, 300))
     RETURNING type, status, payload, error)
  UPDATE memory_assets a SET processing_status = 'failed', processing_error = s.error
    FROM stale s
   WHERE s.type = 'process_assets' AND s.status = 'failed'
     AND a.id = mvault_uuid_or_null(s.payload->>'originalAssetId');

  -- What is due, then two disjoint changes: completed jobs whose work is
  -- due again are woken (an UPDATE locks only the rows it changes), and
  -- work without a job gets one (DO NOTHING locks nothing).
  WITH todo AS (
    SELECT DISTINCT ON (due.type, due.p) due.type, due.p, mvault_payload_hash(due.p) AS h, due.user_id
    FROM (
      -- bytes of an unreferenced blob, after the grace period, not held
      SELECT 'asset_delete' AS type, jsonb_build_object('deleteJobId', d.id) AS p, m.user_id
        FROM asset_delete_jobs d
        JOIN memory_assets a ON a.id = d.asset_id
        JOIN memories m ON m.id = a.memory_id
       WHERE d.status = 'pending' AND coalesce(a.tombstoned_at, a.updated_at) <= mvault_now() - grace
         AND (uid IS NULL OR m.user_id = uid)
         AND NOT EXISTS (SELECT 1 FROM memory_assets h WHERE h.blob_id = d.blob_id AND h.legal_hold)
      UNION ALL
      -- memories still pending past their 24 h
      SELECT 'cleanup_pending', jsonb_build_object('memoryId', m.id), m.user_id
        FROM memories m
       WHERE m.status = 'pending' AND m.expires_at <= mvault_now()
         AND (uid IS NULL OR m.user_id = uid)
         AND NOT EXISTS (SELECT 1 FROM memory_assets a WHERE a.memory_id = m.id
                         AND a.upload_status = 'completed')
      UNION ALL
      -- workspace files past their expiry
      SELECT 'workspace_expiry', jsonb_build_object('memoryId', w.memory_id), w.user_id
        FROM workspace_assets w
        JOIN memory_items i ON i.memory_id = w.memory_id
        JOIN memory_assets a ON a.id = i.primary_asset_id
       WHERE w.expires_at <= mvault_now() AND a.lifecycle_status = 'active'
         AND a.upload_status = 'completed' AND (uid IS NULL OR w.user_id = uid)
      UNION ALL
      -- content that arrived without its hash (the web application)
      SELECT 'content_hash_compute', jsonb_build_object('assetId', a.id), m.user_id
        FROM memory_assets a JOIN memories m ON m.id = a.memory_id
       WHERE a.content_hash IS NULL AND a.upload_status = 'completed' AND a.lifecycle_status = 'active'
         AND a.storage_key IS NOT NULL AND (uid IS NULL OR m.user_id = uid)
      UNION ALL
      -- images without variants (the web application's, older files, a restore)
      SELECT 'process_assets', jsonb_build_object('originalAssetId', a.id, 'recipeVersion', 'v1'), m.user_id
        FROM memory_assets a JOIN memories m ON m.id = a.memory_id
       WHERE a.processing_status = 'pending' AND a.variant_of_asset_id IS NULL
         AND a.upload_status = 'completed' AND a.lifecycle_status = 'active'
         AND a.mime_type LIKE 'image/%' AND a.content_hash IS NOT NULL
         AND (uid IS NULL OR m.user_id = uid)
    ) due),
  woke AS (
    UPDATE background_jobs j
       SET status = 'pending', run_at = mvault_now(), retry_count = 0, error = NULL,
           completed_at = NULL, locked_at = NULL, locked_by = NULL
      FROM todo t WHERE j.type = t.type AND j.payload_hash = t.h AND j.status = 'completed'
    RETURNING 1),
  made AS (
    INSERT INTO background_jobs (type, payload, payload_hash, user_id, run_at)
    SELECT t.type, t.p, t.h, t.user_id, mvault_now() FROM todo t
    ON CONFLICT (type, payload_hash) DO NOTHING
    RETURNING 1)
  SELECT (SELECT count(*) FROM woke) + (SELECT count(*) FROM made) INTO k;
  n := n + k;
  IF n > 0 THEN
    PERFORM pg_notify('mvault_jobs', 'sweep');
  END IF;
  RETURN n;
END
$$;

