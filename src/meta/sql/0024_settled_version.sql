-- 0024: a file another mount is rewriting keeps showing its last uploaded
-- version on every other mount until the new one's upload is done (issue
-- 14, files in flight elsewhere; docs/DECISIONS.md, "A rewrite in flight
-- elsewhere").  The new version becomes the file's primary asset at its
-- close-time record, while its bytes are still only on the writer's disk;
-- other mounts hid the whole file until the upload's record.  Now the item
-- remembers the version that was current and uploaded when a version not
-- yet uploaded replaced it (its asset, and the item's mtime and ctime as
-- they were), and other mounts show that one meanwhile.

ALTER TABLE memory_items ADD COLUMN settled_asset_id uuid,
  ADD COLUMN settled_mtime_ns bigint,
  ADD COLUMN settled_ctime_ns bigint;
-- No foreign key: an asset deleted meanwhile is simply not found (nothing
-- is settled then), and deleting assets costs no lookup here.
CREATE INDEX memory_items_settled_idx ON memory_items (settled_asset_id) WHERE settled_asset_id IS NOT NULL;

-- When the primary asset changes: to an uploaded one, nothing is settled
-- any more; to one not uploaded, from an uploaded one, that one is
-- settled, with the times it showed; from one not uploaded either (saved
-- twice during one upload), the settled version stays.  Every path that
-- makes a new version current goes through here: the close-time record,
-- a save by rename (mvfs_merge), a restore of a version, the web app.
CREATE FUNCTION mvault_item_settled() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM memory_assets a WHERE a.id = NEW.primary_asset_id AND a.upload_status = 'completed') THEN
    NEW.settled_asset_id := NULL;
    NEW.settled_mtime_ns := NULL;
    NEW.settled_ctime_ns := NULL;
  ELSIF EXISTS (SELECT 1 FROM memory_assets a WHERE a.id = OLD.primary_asset_id
                   AND a.upload_status = 'completed' AND a.content_hash IS NOT NULL) THEN
    NEW.settled_asset_id := OLD.primary_asset_id;
    NEW.settled_mtime_ns := floor(extract(epoch FROM OLD.mtime))::bigint * 1000000000 + OLD.mtime_nsec;
    NEW.settled_ctime_ns := OLD.ctime_ns;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER memory_items_settled BEFORE UPDATE OF primary_asset_id ON memory_items
  FOR EACH ROW WHEN (NEW.primary_asset_id IS DISTINCT FROM OLD.primary_asset_id)
  EXECUTE FUNCTION mvault_item_settled();

-- The current version's upload is done: every mount shows it now.  Asked
-- first, so that an upload of a file with nothing settled (almost all)
-- updates no row and runs no trigger of memory_items.
CREATE FUNCTION mvault_asset_settles() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM memory_items i WHERE i.id = NEW.memory_item_id AND i.primary_asset_id = NEW.id
                AND i.settled_asset_id IS NOT NULL) THEN
    UPDATE memory_items SET settled_asset_id = NULL, settled_mtime_ns = NULL, settled_ctime_ns = NULL
     WHERE id = NEW.memory_item_id AND primary_asset_id = NEW.id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER memory_assets_settles AFTER UPDATE OF upload_status ON memory_assets
  FOR EACH ROW WHEN (NEW.upload_status = 'completed' AND OLD.upload_status IS DISTINCT FROM 'completed')
  EXECUTE FUNCTION mvault_asset_settles();

-- The settled version's bytes stay in the store while other mounts may read
-- them: a quick re-save (version_min_age) tombstones the replaced version
-- with its grace period already over, and its deletion would otherwise
-- take the bytes other mounts are showing.  "Kept" leaves the outbox row
-- pending; a later sweep tries again (meta_gc.c).  0005's text, one case
-- added.
CREATE OR REPLACE FUNCTION mvault_blob_deletable_any(p_blob uuid, p_trash_days integer) RETURNS text
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
    WHEN EXISTS (SELECT 1 FROM memory_assets a JOIN memory_items i ON i.settled_asset_id = a.id
                  WHERE a.blob_id = b.id)
      THEN 'other mounts show it while a newer version uploads'
  END
  FROM (SELECT 1) one LEFT JOIN blobs b ON b.id = p_blob
$$;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_worker') THEN
    EXECUTE 'GRANT SELECT (settled_asset_id, settled_mtime_ns, settled_ctime_ns) ON memory_items TO mvault_worker';
  END IF;
END
$$;
