-- 0015: dedup per user (issue 12, "no oracle through dedup").
--
-- Until now a blob was shared by every asset with its bytes: any user
-- could ask blobs whether someone holds a given photo, change another
-- user's ref_count, and name a hash they never uploaded to read its
-- bytes through their own mount (object keys were derived from the hash
-- alone).  Now:
--   - every blob row belongs to one user (user_id), unique per
--     (user_id, content_hash), behind row-level security like every other
--     user-owned table;
--   - users made from now on keep their objects under a prefix of their
--     own (users.key_prefix 'u/<id>/'); users made before keep the shared
--     keys (key_prefix NULL), so their libraries keep working;
--   - an object leaves the store only when it is under its owner's own
--     key and no other blob row (of any user) names it
--     (mvault_blob_object_kept).
-- See docs/DECISIONS.md, "Dedup per user".

-- ---------------------------------------------------------------------------
-- Key prefixes.
-- ---------------------------------------------------------------------------

ALTER TABLE users ADD COLUMN key_prefix text;	-- NULL: the shared keys of before

-- Whether the current role may choose key prefixes: the owner of the
-- schema's tables (or a superuser), never the daemon's role.
CREATE FUNCTION mvault_key_admin() RETURNS boolean
  LANGUAGE sql STABLE
  AS $$SELECT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'public.users'::regclass),
                         'USAGE')$$;

-- A new user gets a prefix of their own; only the owner role may change
-- one (a user who could would read someone else's keys).
CREATE FUNCTION mvault_users_key_prefix() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.key_prefix IS NULL OR NOT mvault_key_admin() THEN
      NEW.key_prefix := 'u/' || NEW.id || '/';
    END IF;
  ELSIF (NEW.key_prefix IS DISTINCT FROM OLD.key_prefix OR NEW.id <> OLD.id) AND NOT mvault_key_admin() THEN
    RAISE EXCEPTION 'the key prefix of user % is not changed by %', OLD.name, current_user
      USING ERRCODE = '42501';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER users_key_prefix BEFORE INSERT OR UPDATE ON users
  FOR EACH ROW EXECUTE FUNCTION mvault_users_key_prefix();

-- The key of content P_SHA under prefix P_PREFIX (the daemon's
-- backend_key_for).
CREATE FUNCTION mvault_blob_key(p_prefix text, p_sha text) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $$SELECT coalesce(p_prefix, '') || 'sha256/' || substr(p_sha, 1, 2) || '/' || substr(p_sha, 3, 2) || '/' || p_sha$$;

-- ---------------------------------------------------------------------------
-- Blobs per user.  The owner migrates with row-level security lifted from
-- the tables it reads (it acts for no user).
-- ---------------------------------------------------------------------------

ALTER TABLE memories NO FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_assets NO FORCE ROW LEVEL SECURITY;
ALTER TABLE asset_delete_jobs NO FORCE ROW LEVEL SECURITY;

ALTER TABLE blobs ADD COLUMN user_id uuid REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE blobs DROP CONSTRAINT blobs_content_hash_key;
DROP INDEX blobs_content_hash_idx;

-- Each blob goes to the first of the users whose assets (or pending
-- deletions) name it; every other such user gets a copy of the row.
WITH refs AS (
  SELECT a.blob_id, m.user_id FROM memory_assets a JOIN memories m ON m.id = a.memory_id
   WHERE a.blob_id IS NOT NULL
  UNION
  SELECT d.blob_id, m.user_id FROM asset_delete_jobs d JOIN memory_assets a ON a.id = d.asset_id
    JOIN memories m ON m.id = a.memory_id WHERE d.blob_id IS NOT NULL)
UPDATE blobs b SET user_id = f.user_id
  FROM (SELECT blob_id, (array_agg(user_id ORDER BY user_id))[1] AS user_id FROM refs GROUP BY blob_id) f
 WHERE f.blob_id = b.id;

WITH refs AS (
  SELECT a.blob_id, m.user_id FROM memory_assets a JOIN memories m ON m.id = a.memory_id
   WHERE a.blob_id IS NOT NULL
  UNION
  SELECT d.blob_id, m.user_id FROM asset_delete_jobs d JOIN memory_assets a ON a.id = d.asset_id
    JOIN memories m ON m.id = a.memory_id WHERE d.blob_id IS NOT NULL)
INSERT INTO blobs (user_id, content_hash, storage_backend, storage_key, bucket, bytes, mime_type, ref_count,
                   created_at, last_accessed_at)
SELECT r.user_id, b.content_hash, b.storage_backend, b.storage_key, b.bucket, b.bytes, b.mime_type, 0,
       b.created_at, b.last_accessed_at
  FROM refs r JOIN blobs b ON b.id = r.blob_id
 WHERE b.user_id <> r.user_id;

-- content_hash was unique until now: it names the old row of each copy
UPDATE memory_assets a SET blob_id = nb.id
  FROM memories m, blobs ob, blobs nb
 WHERE m.id = a.memory_id AND ob.id = a.blob_id AND ob.user_id <> m.user_id
   AND nb.content_hash = ob.content_hash AND nb.user_id = m.user_id;
UPDATE asset_delete_jobs d SET blob_id = nb.id
  FROM memory_assets a, memories m, blobs ob, blobs nb
 WHERE a.id = d.asset_id AND m.id = a.memory_id AND ob.id = d.blob_id AND ob.user_id <> m.user_id
   AND nb.content_hash = ob.content_hash AND nb.user_id = m.user_id;

-- A reference is an active asset using the blob (mvfs_complete,
-- mvfs_release_blob and the restore keep it so).
UPDATE blobs b SET ref_count = (SELECT count(*) FROM memory_assets a
                                 WHERE a.blob_id = b.id AND a.lifecycle_status = 'active');

-- A blob no asset or deletion names belongs to nobody: its row goes
-- (its object, if any, stays in the store).
DELETE FROM blobs WHERE user_id IS NULL;

-- A copy left with no reference waits for deletion like any other.
INSERT INTO asset_delete_jobs (asset_id, backend, backend_key, blob_id)
SELECT DISTINCT ON (b.id) a.id, b.storage_backend, b.storage_key, b.id
  FROM blobs b JOIN memory_assets a ON a.blob_id = b.id
 WHERE b.ref_count = 0 AND a.lifecycle_status = 'tombstoned'
   AND NOT EXISTS (SELECT 1 FROM asset_delete_jobs j WHERE j.blob_id = b.id AND j.status = 'pending')
 ORDER BY b.id, a.tombstoned_at;

ALTER TABLE blobs ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE blobs ALTER COLUMN user_id SET DEFAULT mvault_uid();
ALTER TABLE blobs ADD CONSTRAINT blobs_user_hash_key UNIQUE (user_id, content_hash);

ALTER TABLE memories FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_assets FORCE ROW LEVEL SECURITY;
ALTER TABLE asset_delete_jobs FORCE ROW LEVEL SECURITY;

ALTER TABLE blobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE blobs FORCE ROW LEVEL SECURITY;
CREATE POLICY blobs_owner ON blobs USING (user_id = mvault_uid()) WITH CHECK (user_id = mvault_uid());

-- ---------------------------------------------------------------------------
-- The daemon's upload record, with the new uniqueness (0011's text
-- otherwise).
-- ---------------------------------------------------------------------------

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
    UPDATE upload_sessions SET status = 'completed', uploaded_files = total_files
     WHERE memory_id = mem AND status = 'active';
  END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Deletion: whether a blob's object may leave the store.
-- ---------------------------------------------------------------------------

-- NULL when the object of blob P_BLOB may be deleted, else why it stays
-- (the blob row itself may still go): it is not under its owner's own key
-- (a row may name any key: the worker deletes only what its owner put),
-- or another blob row, of any user, names it (users made before 0015
-- share keys).  Takes a lock per key, so that two deletions of rows
-- sharing one key do not each wait for the other and keep it forever.
CREATE FUNCTION mvault_blob_object_kept(p_blob uuid) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public AS $$
DECLARE
  k text;
  be storage_backend_t;
  own text;
BEGIN
  SELECT b.storage_key, b.storage_backend, mvault_blob_key(u.key_prefix, b.content_hash)
    INTO k, be, own FROM blobs b JOIN users u ON u.id = b.user_id WHERE b.id = p_blob;
  IF k IS NULL THEN
    RETURN 'the blob is gone';
  END IF;
  IF k <> own THEN
    RETURN 'its key is not its owner''s';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('mvault_blob_key/' || be::text || '/' || k, 0));
  IF EXISTS (SELECT 1 FROM blobs o WHERE o.storage_backend = be AND o.storage_key = k AND o.id <> p_blob) THEN
    RETURN 'another blob names its object';
  END IF;
  RETURN NULL;
END
$$;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_jobs') THEN
    EXECUTE 'CREATE POLICY blobs_jobs_read ON blobs FOR SELECT TO mvault_jobs USING (true)';
    EXECUTE 'CREATE POLICY blobs_jobs_forget ON blobs FOR DELETE TO mvault_jobs USING (true)';
    IF current_user <> 'mvault_jobs' THEN
      EXECUTE format('GRANT mvault_jobs TO %I', current_user);
    END IF;
    EXECUTE 'GRANT CREATE ON SCHEMA public TO mvault_jobs';
    EXECUTE 'ALTER FUNCTION mvault_blob_object_kept(uuid) OWNER TO mvault_jobs';
    EXECUTE 'REVOKE CREATE ON SCHEMA public FROM mvault_jobs';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT EXECUTE ON FUNCTION mvault_blob_object_kept(uuid), mvault_blob_key(text, text),'
            ' mvault_key_admin() TO mvault_app';
  END IF;
END
$$;
