-- 0005: the background job queue (seed 000 section 6) and the few steps
-- of jobs that must see past one user's rows.
--
-- Who sees what.  background_jobs and blobs have no row-level security (a
-- system queue, and blobs shared by every asset with those bytes).  A
-- worker connects as mvault_app like the daemon, and runs every job step
-- in a transaction that sets mvault.user_id to the job's user, so the
-- policies of 0003 check each row a job touches.  Three things are about
-- every user at once and are done only by the SECURITY DEFINER functions
-- below, owned by mvault_jobs, a NOLOGIN role whose policies let it read
-- (and, for deletion, mark) rows of every user:
--   mvault_jobs_sweep      finds due work and enqueues it (for the caller's
--                          user when mvault.user_id is set, else for all);
--   mvault_blob_deletable  whether a blob's bytes may leave the store (any
--                          user's asset may hold or have held them);
--   mvault_blob_forget     after the bytes are gone: every asset that used
--                          them 'deleted', the blob row removed.
-- mvault_job_owner finds the user of a job enqueued without one.
-- Two triggers keep variants in step with their originals: an image whose
-- upload completes enqueues process_assets, and a tombstone or restore of
-- an original carries its variants along.

-- Workspace files expire through a job of their own (seed 003: 7 days).
ALTER TABLE background_jobs DROP CONSTRAINT background_jobs_type_check;
ALTER TABLE background_jobs ADD CONSTRAINT background_jobs_type_check
  CHECK (type IN ('cleanup_pending', 'asset_delete', 'content_hash_compute', 'process_assets',
                  'workspace_expiry'));

-- The user whose rows the job works on (NULL: resolved when claimed).
ALTER TABLE background_jobs ADD COLUMN user_id uuid REFERENCES users(id) ON DELETE CASCADE;

-- run_at: when the job may run next (a retry's backoff moves it).
UPDATE background_jobs SET run_at = scheduled_at WHERE run_at IS NULL;
ALTER TABLE background_jobs ALTER COLUMN run_at SET DEFAULT now();
ALTER TABLE background_jobs ALTER COLUMN run_at SET NOT NULL;

-- A claim walks the due jobs in run_at order; stale locks are found by age.
CREATE INDEX background_jobs_due_idx ON background_jobs (run_at)
  WHERE status IN ('pending', 'retry');
CREATE INDEX background_jobs_user_due_idx ON background_jobs (user_id, run_at)
  WHERE status IN ('pending', 'retry');
CREATE INDEX background_jobs_stale_idx ON background_jobs (locked_at)
  WHERE status = 'processing';

-- What the sweep looks for, each on a small partial index.
CREATE INDEX memory_assets_unhashed_idx ON memory_assets (created_at)
  WHERE content_hash IS NULL AND upload_status = 'completed' AND lifecycle_status = 'active';
CREATE INDEX memory_assets_unprocessed_idx ON memory_assets (created_at)
  WHERE processing_status = 'pending' AND variant_of_asset_id IS NULL
    AND upload_status = 'completed' AND lifecycle_status = 'active' AND mime_type LIKE 'image/%';
CREATE INDEX asset_delete_jobs_pending_idx ON asset_delete_jobs (created_at) WHERE status = 'pending';
CREATE INDEX memories_pending_expiry_idx ON memories (expires_at) WHERE status = 'pending';

-- The hash that makes an enqueue idempotent: jsonb's text form is
-- canonical (keys sorted), so the same payload always hashes the same.
CREATE FUNCTION mvault_payload_hash(p jsonb) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS 'SELECT encode(sha256(convert_to(p::text, ''UTF8'')), ''hex'')';

CREATE FUNCTION mvault_uuid_or_null(s text) RETURNS uuid
  LANGUAGE sql IMMUTABLE
  AS $$SELECT CASE WHEN s ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                   THEN s::uuid END$$;

-- Enqueues a job unless one with the same type and payload exists; true
-- when this call made it.  Wakes listening workers at commit.
CREATE FUNCTION mvault_job_enqueue(p_type text, p_payload jsonb, p_user uuid)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  made boolean;
BEGIN
  INSERT INTO background_jobs (type, payload, payload_hash, user_id, run_at)
  VALUES (p_type, p_payload, mvault_payload_hash(p_payload), p_user, mvault_now())
  ON CONFLICT (type, payload_hash) DO NOTHING;
  made := FOUND;
  IF made THEN
    PERFORM pg_notify('mvault_jobs', p_type);
  END IF;
  RETURN made;
END
$$;

-- An image original whose bytes reached the store gets its variants made:
-- the job is enqueued in the transaction that marks the upload completed,
-- whoever wrote it (the daemon or the web application).  Image means the
-- type sniffed from the content's magic bytes (mime_type), not the name.
CREATE FUNCTION mvault_enqueue_variants() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.variant_of_asset_id IS NULL AND NEW.upload_status = 'completed'
     AND NEW.lifecycle_status = 'active' AND NEW.processing_status = 'pending'
     AND NEW.mime_type LIKE 'image/%' AND NEW.content_hash IS NOT NULL
     AND (TG_OP = 'INSERT' OR OLD.upload_status IS DISTINCT FROM 'completed') THEN
    PERFORM mvault_job_enqueue('process_assets',
              jsonb_build_object('originalAssetId', NEW.id, 'recipeVersion', 'v1'),
              (SELECT user_id FROM memories WHERE id = NEW.memory_id));
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER memory_assets_enqueue_variants
  AFTER INSERT OR UPDATE OF upload_status ON memory_assets
  FOR EACH ROW EXECUTE FUNCTION mvault_enqueue_variants();

-- Variants live and die with their original: when an original is
-- tombstoned its variants are too (their blobs lose a reference, a blob
-- left with none gets an outbox row), and a restore brings them back (the
-- references back, pending deletions cancelled).  Each statement here sees
-- variants committed while the original's row lock was awaited.
CREATE FUNCTION mvault_variants_follow() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.lifecycle_status = 'active' AND NEW.lifecycle_status = 'tombstoned' THEN
    WITH v AS (UPDATE memory_assets SET lifecycle_status = 'tombstoned', tombstoned_at = NEW.tombstoned_at
                WHERE variant_of_asset_id = NEW.id AND lifecycle_status = 'active'
                RETURNING id, blob_id),
         n AS (SELECT blob_id, count(*) AS k, (array_agg(id))[1] AS asset_id
                 FROM v WHERE blob_id IS NOT NULL GROUP BY blob_id),
         b AS (UPDATE blobs SET ref_count = ref_count - n.k FROM n WHERE blobs.id = n.blob_id
               RETURNING blobs.id, blobs.ref_count, blobs.storage_backend, blobs.storage_key, n.asset_id)
    INSERT INTO asset_delete_jobs (asset_id, backend, backend_key, blob_id)
    SELECT asset_id, storage_backend, storage_key, id FROM b WHERE ref_count = 0;
  ELSIF OLD.lifecycle_status = 'tombstoned' AND NEW.lifecycle_status = 'active' THEN
    WITH v AS (UPDATE memory_assets SET lifecycle_status = 'active', tombstoned_at = NULL
                WHERE variant_of_asset_id = NEW.id AND lifecycle_status = 'tombstoned'
                RETURNING blob_id),
         n AS (SELECT blob_id, count(*) AS k FROM v WHERE blob_id IS NOT NULL GROUP BY blob_id),
         b AS (UPDATE blobs SET ref_count = ref_count + n.k FROM n WHERE blobs.id = n.blob_id
               RETURNING blobs.id)
    UPDATE asset_delete_jobs SET status = 'cancelled'
     WHERE blob_id IN (SELECT id FROM b) AND status = 'pending';
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER memory_assets_variants_follow
  AFTER UPDATE OF lifecycle_status ON memory_assets
  FOR EACH ROW WHEN (NEW.variant_of_asset_id IS NULL AND OLD.lifecycle_status IS DISTINCT FROM NEW.lifecycle_status)
  EXECUTE FUNCTION mvault_variants_follow();

-- ---------------------------------------------------------------------------
-- The role that owns the cross-user steps.
-- ---------------------------------------------------------------------------

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_jobs')
     AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
    CREATE ROLE mvault_jobs NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_jobs') THEN
    EXECUTE 'GRANT USAGE ON SCHEMA public TO mvault_jobs';
    EXECUTE 'GRANT SELECT ON memories, memory_items, memory_assets, workspace_assets,'
            ' asset_delete_jobs, mvault_clock, users TO mvault_jobs';
    EXECUTE 'GRANT UPDATE ON memories, memory_assets, asset_delete_jobs TO mvault_jobs';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE ON background_jobs TO mvault_jobs';
    EXECUTE 'GRANT SELECT, DELETE ON blobs TO mvault_jobs';
    EXECUTE 'CREATE POLICY memories_jobs_read ON memories FOR SELECT TO mvault_jobs USING (true)';
    EXECUTE 'CREATE POLICY memories_jobs_mark ON memories FOR UPDATE TO mvault_jobs USING (true) WITH CHECK (true)';
    EXECUTE 'CREATE POLICY memory_items_jobs_read ON memory_items FOR SELECT TO mvault_jobs USING (true)';
    EXECUTE 'CREATE POLICY memory_assets_jobs_read ON memory_assets FOR SELECT TO mvault_jobs USING (true)';
    EXECUTE 'CREATE POLICY memory_assets_jobs_mark ON memory_assets FOR UPDATE TO mvault_jobs USING (true) WITH CHECK (true)';
    EXECUTE 'CREATE POLICY workspace_assets_jobs_read ON workspace_assets FOR SELECT TO mvault_jobs USING (true)';
    EXECUTE 'CREATE POLICY asset_delete_jobs_jobs_read ON asset_delete_jobs FOR SELECT TO mvault_jobs USING (true)';
    EXECUTE 'CREATE POLICY asset_delete_jobs_jobs_mark ON asset_delete_jobs FOR UPDATE TO mvault_jobs USING (true) WITH CHECK (true)';
    EXECUTE 'CREATE POLICY users_jobs_read ON users FOR SELECT TO mvault_jobs USING (true)';
  ELSE
    RAISE NOTICE 'role mvault_jobs missing and cannot be created by %: workers see one user at a time', current_user;
  END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Cross-user steps (owned by mvault_jobs below).
-- ---------------------------------------------------------------------------

-- The user a job works for, from its payload (for jobs enqueued without one).
CREATE FUNCTION mvault_job_owner(p jsonb) RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$
  SELECT coalesce(
    (SELECT user_id FROM memories WHERE id = mvault_uuid_or_null(p->>'memoryId')),
    (SELECT m.user_id FROM memory_assets a JOIN memories m ON m.id = a.memory_id
      WHERE a.id = mvault_uuid_or_null(coalesce(p->>'originalAssetId', p->>'assetId'))),
    (SELECT m.user_id FROM asset_delete_jobs d JOIN memory_assets a ON a.id = d.asset_id
      JOIN memories m ON m.id = a.memory_id WHERE d.id = mvault_uuid_or_null(p->>'deleteJobId')))
  $$;

-- Finds due work and enqueues it; returns how many jobs it made or woke.
-- A job that completed while its work is due again (a restore brought an
-- image back; a legal hold was lifted) is set pending again.  Jobs whose
-- worker went silent past their visibility timeout are given back to the
-- queue (an attempt used), or failed when they have used their retries.
CREATE FUNCTION mvault_jobs_sweep(p_trash_days integer) RETURNS integer
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

  INSERT INTO background_jobs AS j (type, payload, payload_hash, user_id, run_at)
  SELECT DISTINCT ON (w.type, w.p) w.type, w.p, mvault_payload_hash(w.p), w.user_id, mvault_now()
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
  ) w
  ON CONFLICT (type, payload_hash) DO UPDATE
     SET status = 'pending', run_at = mvault_now(), retry_count = 0, error = NULL,
         completed_at = NULL, locked_at = NULL, locked_by = NULL
   WHERE j.status = 'completed';
  GET DIAGNOSTICS k = ROW_COUNT;
  n := n + k;
  IF n > 0 THEN
    PERFORM pg_notify('mvault_jobs', 'sweep');
  END IF;
  RETURN n;
END
$$;

-- Whether the bytes of blob P_BLOB may leave the store now: NULL when they
-- may, else the reason they stay.  The caller holds the blob row locked
-- (FOR UPDATE), so no commit can take a reference meanwhile.
CREATE FUNCTION mvault_blob_deletable(p_blob uuid, p_trash_days integer) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT CASE
    WHEN b.id IS NULL THEN 'the blob is gone'
    WHEN b.ref_count > 0 THEN 'still referenced (' || b.ref_count || ')'
    WHEN EXISTS (SELECT 1 FROM memory_assets a WHERE a.blob_id = b.id AND a.legal_hold)
      THEN 'under legal hold'
    WHEN EXISTS (SELECT 1 FROM memory_assets a WHERE a.blob_id = b.id AND (a.lifecycle_status = 'active'
                 OR (a.lifecycle_status = 'tombstoned'
                     AND coalesce(a.tombstoned_at, a.updated_at) > mvault_now() - make_interval(days => p_trash_days))))
      THEN 'an asset using it is inside its grace period'
  END
  FROM (SELECT 1) one LEFT JOIN blobs b ON b.id = p_blob
$$;

-- After the bytes of blob P_BLOB left the store: every tombstoned asset
-- that used it is 'deleted' (and lets go of the blob), memories left with
-- nothing are 'deleted', pending outbox rows of the blob are completed,
-- and the blob row goes (a later upload of the same bytes starts afresh).
-- Returns the number of assets marked.
CREATE FUNCTION mvault_blob_forget(p_blob uuid) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
  mems uuid[];
  k integer;
BEGIN
  SELECT array_agg(DISTINCT memory_id) INTO mems
    FROM memory_assets WHERE blob_id = p_blob AND lifecycle_status = 'tombstoned';
  UPDATE memory_assets SET lifecycle_status = 'deleted', blob_id = NULL
   WHERE blob_id = p_blob AND lifecycle_status = 'tombstoned';
  GET DIAGNOSTICS k = ROW_COUNT;
  UPDATE memories m SET status = 'deleted', expires_at = NULL
   WHERE m.id = ANY (coalesce(mems, '{}')) AND m.status <> 'deleted'
     AND NOT EXISTS (SELECT 1 FROM memory_assets a WHERE a.memory_id = m.id
                     AND a.lifecycle_status <> 'deleted');
  UPDATE asset_delete_jobs SET status = 'completed', processed_at = mvault_now()
   WHERE blob_id = p_blob AND status IN ('pending', 'processing');
  DELETE FROM blobs WHERE id = p_blob AND ref_count = 0;
  RETURN k;
END
$$;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_jobs') THEN
    -- giving a function away takes membership of the new owner, and the
    -- new owner needs CREATE on the schema for the change only
    IF current_user <> 'mvault_jobs' THEN
      EXECUTE format('GRANT mvault_jobs TO %I', current_user);
    END IF;
    EXECUTE 'GRANT CREATE ON SCHEMA public TO mvault_jobs';
    EXECUTE 'ALTER FUNCTION mvault_job_owner(jsonb) OWNER TO mvault_jobs';
    EXECUTE 'ALTER FUNCTION mvault_jobs_sweep(integer) OWNER TO mvault_jobs';
    EXECUTE 'ALTER FUNCTION mvault_blob_deletable(uuid, integer) OWNER TO mvault_jobs';
    EXECUTE 'ALTER FUNCTION mvault_blob_forget(uuid) OWNER TO mvault_jobs';
    EXECUTE 'REVOKE CREATE ON SCHEMA public FROM mvault_jobs';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO mvault_app';
  END IF;
END
$$;
