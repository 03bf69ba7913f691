-- 0027: storage edges kept true, presence per backend, and pins ("store
-- forever", issue 13).  docs/DECISIONS.md, "Storage edges, presence and
-- pins"; SCHEMA_NOTES.md, 0027.
--
-- Edges (seed 001's storage_edges) are written where the facts change, in
-- the statement that changes them, so no change costs a round trip more:
--   a memory made            its metadata edge ('neon-db': the PostgreSQL
--                            that holds the rows), by a trigger on memories
--   an original's upload     its asset edge on the store it went to
--   completed                (storage_backend_t names are backend_t names),
--                            by a trigger on memory_assets, inside
--                            mvfs_complete's UPDATE (or the web app's)
--   its bytes deleted        the edge is marked not present, by the
--                            deletion job's "forget blob" statement
--                            (meta_gc.c)
--   a pin's copy made        the pinned backend's edges present (meta_pins.c)
--
-- Pins: storage_pins holds what a person asked to keep on another backend
-- (a file, or a gallery: every memory in it, also those added later).
-- mvault_pin_sync marks the memory's edges on that backend 'migrating' and
-- enqueues a store_copy job (payload memoryId, backend, sha256); the
-- worker copies the bytes, checks their SHA-256 there, writes a small
-- metadata document beside them and marks the edges present and 'idle'
-- (or 'failed' with the reason).  A pin let go enqueues store_drop, which
-- removes the copy unless another pinned memory of the user has the same
-- bytes there.

ALTER TABLE background_jobs DROP CONSTRAINT background_jobs_type_check;
ALTER TABLE background_jobs ADD CONSTRAINT background_jobs_type_check
  CHECK (type IN ('cleanup_pending', 'asset_delete', 'content_hash_compute', 'process_assets',
                  'workspace_expiry', 'store_copy', 'store_drop'));

-- Nearly every edge is 'idle' for ever: the index the seed asks for on
-- sync_state holds only the others (what sync_status, `mvaultfs status`
-- and the presence of a copy in progress look for), so a create or an
-- upload record does not add to a btree of millions of equal keys.
DROP INDEX ix_edges_sync_state;
CREATE INDEX ix_edges_sync_state ON storage_edges (sync_state) WHERE sync_state <> 'idle';

-- ---------------------------------------------------------------------------
-- Pins
-- ---------------------------------------------------------------------------

CREATE TABLE storage_pins (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    memory_id  uuid        REFERENCES memories(id) ON DELETE CASCADE,
    gallery_id uuid        REFERENCES galleries(id) ON DELETE CASCADE,
    backend    backend_t   NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT storage_pins_one_target CHECK ((memory_id IS NULL) <> (gallery_id IS NULL)),
    CONSTRAINT storage_pins_not_neon CHECK (backend <> 'neon-db')
);

CREATE UNIQUE INDEX ux_pins_memory_backend ON storage_pins (memory_id, backend) WHERE memory_id IS NOT NULL;
CREATE UNIQUE INDEX ux_pins_gallery_backend ON storage_pins (gallery_id, backend) WHERE gallery_id IS NOT NULL;
CREATE INDEX ix_pins_user ON storage_pins (user_id);

ALTER TABLE storage_pins ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage_pins FORCE ROW LEVEL SECURITY;
CREATE POLICY storage_pins_owner ON storage_pins
  USING (user_id = (SELECT mvault_uid())) WITH CHECK (user_id = (SELECT mvault_uid()));

-- Store keys of the copies are made by the worker from the user's prefix
-- and the hash (backend_key_for), never read from these rows, which their
-- user may write.

-- The backends memory P_MEMORY is pinned to: its own pins and its
-- galleries'.
CREATE FUNCTION mvault_pins_of(p_memory uuid) RETURNS TABLE (backend backend_t)
LANGUAGE sql STABLE AS $$
  SELECT p.backend FROM storage_pins p WHERE p.memory_id = p_memory
  UNION
  SELECT p.backend FROM gallery_items gi JOIN storage_pins p ON p.gallery_id = gi.gallery_id
   WHERE gi.memory_id = p_memory
$$;

CREATE FUNCTION mvault_pinned(p_memory uuid, p_backend backend_t) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM mvault_pins_of(p_memory) p WHERE p.backend = p_backend)
$$;

-- Enqueues a job, or wakes the one with the same payload that completed,
-- failed or waits for a retry: a pin made again after a failure, or after
-- an unpin, runs its copy again at once.
CREATE FUNCTION mvault_job_wake(p_type text, p_payload jsonb, p_user uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO background_jobs AS j (type, payload, payload_hash, user_id, run_at)
    VALUES (p_type, p_payload, mvault_payload_hash(p_payload), p_user, mvault_now())
    ON CONFLICT (type, payload_hash) DO UPDATE
       SET status = 'pending', run_at = mvault_now(), retry_count = 0, error = NULL,
           completed_at = NULL, locked_at = NULL, locked_by = NULL
     WHERE j.status IN ('completed', 'failed', 'retry');
  IF FOUND THEN
    PERFORM pg_notify('mvault_jobs', p_type);
  END IF;
  RETURN FOUND;
END
$$;

-- Brings memory P_MEMORY's copy on P_BACKEND in line with its content:
-- nothing when both edges there are present with its current bytes; else
-- both edges 'migrating' and, when its bytes are in the primary store, a
-- store_copy job (one per content: a new version gets a job of its own).
-- A memory whose upload is not done yet waits 'migrating'; the upload's
-- trigger calls this again.
CREATE FUNCTION mvault_pin_sync(p_memory uuid, p_backend backend_t) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  sha text;
  sz bigint;
  ready boolean;
  mt memory_type_t;
  uid uuid;
BEGIN
  SELECT a.content_hash, a.bytes,
         a.upload_status = 'completed' AND a.blob_id IS NOT NULL AND a.lifecycle_status <> 'deleted',
         m.type, m.user_id
    INTO sha, sz, ready, mt, uid
    FROM memories m
    JOIN memory_items i ON i.memory_id = m.id
    JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE m.id = p_memory
   LIMIT 1;
  IF mt IS NULL THEN
    RETURN;
  END IF;
  IF ready AND sha IS NOT NULL
     AND (SELECT count(*) FROM storage_edges e
           WHERE e.memory_id = p_memory AND e.backend = p_backend AND e.present AND e.sync_state = 'idle'
             AND (e.artifact = 'metadata' OR e.content_hash = sha)) = 2 THEN
    RETURN;
  END IF;
  INSERT INTO storage_edges AS e (memory_id, memory_type, artifact, backend, content_hash, size_bytes, sync_state)
    SELECT p_memory, mt, x.artifact, p_backend, CASE WHEN x.artifact = 'asset' THEN sha END,
           CASE WHEN x.artifact = 'asset' THEN sz END, 'migrating'
      FROM (VALUES ('metadata'::artifact_t), ('asset'::artifact_t)) x (artifact)
    ON CONFLICT (memory_id, memory_type, artifact, backend) DO UPDATE
       SET sync_state = 'migrating', sync_error = NULL,
           present = e.present AND (e.artifact = 'metadata' OR e.content_hash IS NOT DISTINCT FROM EXCLUDED.content_hash),
           content_hash = EXCLUDED.content_hash, size_bytes = EXCLUDED.size_bytes;
  IF ready AND sha IS NOT NULL THEN
    PERFORM mvault_job_wake('store_copy',
              jsonb_build_object('memoryId', p_memory, 'backend', p_backend, 'sha256', sha), uid);
  END IF;
END
$$;

-- After a pin of memory P_MEMORY on P_BACKEND went: when no other pin
-- holds it there, a copy that is there is dropped (store_drop), and edges
-- of a copy never made go at once.
CREATE FUNCTION mvault_pin_release(p_memory uuid, p_backend backend_t) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF mvault_pinned(p_memory, p_backend) THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM storage_edges e WHERE e.memory_id = p_memory AND e.backend = p_backend AND e.present) THEN
    UPDATE storage_edges SET sync_state = 'idle', sync_error = NULL
     WHERE memory_id = p_memory AND backend = p_backend AND sync_state <> 'idle';
    PERFORM mvault_job_wake('store_drop', jsonb_build_object('memoryId', p_memory, 'backend', p_backend),
                            (SELECT m.user_id FROM memories m WHERE m.id = p_memory));
  ELSE
    DELETE FROM storage_edges WHERE memory_id = p_memory AND backend = p_backend;
  END IF;
END
$$;

-- The pins of the file or gallery with inode P_INO become exactly
-- P_BACKENDS (setxattr user.mvault.pin; an empty array unpins).  Returns
-- how many memories it covers.  MV002: no such file or gallery; MV095:
-- something else (a folder, a collection); MV061 (ENODATA): an unpin of
-- what has no pins.
CREATE FUNCTION mvfs_pin_set(p_user uuid, p_ino bigint, p_backends backend_t[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  mem uuid;
  gal uuid;
  gone backend_t[];
  made backend_t[];
  n integer;
BEGIN
  SELECT i.memory_id INTO mem FROM memory_items i WHERE i.ino = p_ino AND i.user_id = p_user;
  IF mem IS NULL THEN
    SELECT g.id INTO gal FROM galleries g WHERE g.ino = p_ino AND g.user_id = p_user;
  END IF;
  IF mem IS NULL AND gal IS NULL THEN
    IF EXISTS (SELECT 1 FROM folders f WHERE f.ino = p_ino) OR EXISTS (SELECT 1 FROM user_collections c WHERE c.ino = p_ino) THEN
      RAISE EXCEPTION 'only files and galleries are pinned' USING ERRCODE = 'MV095';
    END IF;
    RAISE EXCEPTION 'no file or gallery %', p_ino USING ERRCODE = 'MV002';
  END IF;
  WITH d AS (DELETE FROM storage_pins p
              WHERE (p.memory_id = mem OR p.gallery_id = gal) AND NOT (p.backend = ANY (p_backends))
              RETURNING p.backend)
  SELECT coalesce(array_agg(d.backend), '{}') INTO gone FROM d;
  WITH i AS (INSERT INTO storage_pins (user_id, memory_id, gallery_id, backend)
              SELECT p_user, mem, gal, b FROM unnest(p_backends) b
              ON CONFLICT DO NOTHING
              RETURNING backend)
  SELECT coalesce(array_agg(i.backend), '{}') INTO made FROM i;
  IF cardinality(p_backends) = 0 AND cardinality(gone) = 0 THEN
    RAISE EXCEPTION 'nothing is pinned there' USING ERRCODE = 'MV061';
  END IF;
  -- every memory covered: pinned (again) where asked, released where not
  PERFORM mvault_pin_release(x.memory_id, g.b)
     FROM (SELECT mem AS memory_id WHERE mem IS NOT NULL
           UNION ALL SELECT gi.memory_id FROM gallery_items gi WHERE gi.gallery_id = gal) x,
          unnest(gone) g (b);
  PERFORM mvault_pin_sync(x.memory_id, b.b)
     FROM (SELECT mem AS memory_id WHERE mem IS NOT NULL
           UNION ALL SELECT gi.memory_id FROM gallery_items gi WHERE gi.gallery_id = gal) x,
          unnest(p_backends) b (b);
  SELECT CASE WHEN mem IS NOT NULL THEN 1 ELSE (SELECT count(*) FROM gallery_items gi WHERE gi.gallery_id = gal) END
    INTO n;
  RETURN n;
END
$$;

-- The pins set on the file or gallery P_INO itself, in enum order, as
-- backend labels joined by ','; NULL when none.
CREATE FUNCTION mvfs_pin_get(p_user uuid, p_ino bigint) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT string_agg(p.backend::text, ',' ORDER BY p.backend)
    FROM storage_pins p
   WHERE p.user_id = p_user
     AND (p.memory_id = (SELECT i.memory_id FROM memory_items i WHERE i.ino = p_ino AND i.user_id = p_user)
          OR p.gallery_id = (SELECT g.id FROM galleries g WHERE g.ino = p_ino AND g.user_id = p_user))
$$;

-- ---------------------------------------------------------------------------
-- Edges kept true
-- ---------------------------------------------------------------------------

-- A memory's metadata is in this database from the moment it is made.
CREATE FUNCTION mvault_edge_memory() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO storage_edges (memory_id, memory_type, artifact, backend, present, location, last_synced_at)
      VALUES (NEW.id, NEW.type, 'metadata', 'neon-db', true, 'memories/' || NEW.id, now())
      ON CONFLICT (memory_id, memory_type, artifact, backend) DO NOTHING;
  ELSE
    UPDATE storage_edges SET memory_type = NEW.type WHERE memory_id = NEW.id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER memories_edge_made AFTER INSERT ON memories
  FOR EACH ROW EXECUTE FUNCTION mvault_edge_memory();
CREATE TRIGGER memories_edge_type AFTER UPDATE OF type ON memories
  FOR EACH ROW WHEN (OLD.type IS DISTINCT FROM NEW.type) EXECUTE FUNCTION mvault_edge_memory();

-- An original's upload completed: its asset edge on the store it went to
-- (the upload record's own statement), and its pins follow the new bytes.
CREATE FUNCTION mvault_edge_asset() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  mt memory_type_t;
  be backend_t := NEW.storage_backend::text::backend_t;
BEGIN
  SELECT m.type INTO mt FROM memories m WHERE m.id = NEW.memory_id;
  IF mt IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO storage_edges AS e (memory_id, memory_type, artifact, backend, present, location, content_hash,
                                  size_bytes, sync_state, last_synced_at)
    VALUES (NEW.memory_id, mt, 'asset', be, true, NEW.storage_key, NEW.content_hash, NEW.bytes, 'idle', now())
    ON CONFLICT (memory_id, memory_type, artifact, backend) DO UPDATE
       SET present = true, location = EXCLUDED.location, content_hash = EXCLUDED.content_hash,
           size_bytes = EXCLUDED.size_bytes, sync_state = 'idle', sync_error = NULL, last_synced_at = now();
  PERFORM mvault_pin_sync(NEW.memory_id, p.backend) FROM mvault_pins_of(NEW.memory_id) p WHERE p.backend <> be;
  RETURN NULL;
END
$$;
CREATE TRIGGER memory_assets_edge AFTER INSERT OR UPDATE OF upload_status ON memory_assets
  FOR EACH ROW
  WHEN (NEW.upload_status = 'completed' AND NEW.variant_of_asset_id IS NULL AND NEW.asset_type = 'original'
        AND NEW.lifecycle_status = 'active' AND NEW.storage_backend IS NOT NULL)
  EXECUTE FUNCTION mvault_edge_asset();

-- A memory put into a pinned gallery is pinned; one taken out is let go
-- (unless another pin holds it).
CREATE FUNCTION mvault_edge_gallery_item() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM mvault_pin_sync(NEW.memory_id, p.backend) FROM storage_pins p WHERE p.gallery_id = NEW.gallery_id;
  ELSE
    PERFORM mvault_pin_release(OLD.memory_id, p.backend) FROM storage_pins p WHERE p.gallery_id = OLD.gallery_id;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER gallery_items_pins_in AFTER INSERT ON gallery_items
  FOR EACH ROW EXECUTE FUNCTION mvault_edge_gallery_item();
CREATE TRIGGER gallery_items_pins_out AFTER DELETE ON gallery_items
  FOR EACH ROW EXECUTE FUNCTION mvault_edge_gallery_item();

-- Why blob P_BLOB's bytes must stay in the primary store for a pin: NULL
-- when no pin needs them, else the reason.  A pin needs a memory's
-- current bytes until its copy of them is made (present); a copy that
-- failed still needs them (the person may pin again).  Asked by the
-- deletion job in its "lock blob" statement (meta_gc.c).
CREATE FUNCTION mvault_pin_needs(p_blob uuid) RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT 'a copy for a pin on ' || min(p.backend::text) || ' is not made yet'
    FROM memory_assets a
    JOIN memory_items i ON i.primary_asset_id = a.id
    CROSS JOIN LATERAL mvault_pins_of(a.memory_id) p
   WHERE a.blob_id = p_blob
     AND NOT EXISTS (SELECT 1 FROM storage_edges e
                      WHERE e.memory_id = a.memory_id AND e.backend = p.backend AND e.artifact = 'asset'
                        AND e.present AND e.content_hash = a.content_hash)
  HAVING count(*) > 0
$$;

-- ---------------------------------------------------------------------------
-- Presence per backend (seed 001's views name fixed backends; these name
-- any, for the xattrs and `mvaultfs status`)
-- ---------------------------------------------------------------------------

-- One row per memory and backend it has an edge on.
CREATE VIEW memory_backend_presence WITH (security_invoker = true) AS
SELECT
    e.memory_id,
    m.user_id,
    e.backend,
    COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'metadata'), false) AS meta_present,
    COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'asset'), false)    AS asset_present,
    CASE WHEN bool_or(e.sync_state = 'failed') THEN 'failed'::sync_t
         WHEN bool_or(e.sync_state = 'migrating') THEN 'migrating'::sync_t
         ELSE 'idle'::sync_t END                                                 AS sync_state,
    max(e.sync_error)                                                            AS sync_error,
    max(e.size_bytes) FILTER (WHERE e.artifact = 'asset')                        AS size_bytes,
    mvault_pinned(e.memory_id, e.backend)                                        AS pinned
FROM storage_edges e
JOIN memories m ON m.id = e.memory_id
GROUP BY e.memory_id, m.user_id, e.backend;

-- One row per gallery and backend its memories have asset edges on, or
-- it is pinned to: how many of its memories have their content there.
CREATE VIEW gallery_backend_presence WITH (security_invoker = true) AS
SELECT
    g.id      AS gallery_id,
    g.user_id AS user_id,
    b.backend,
    (SELECT count(*) FROM gallery_items gi WHERE gi.gallery_id = g.id)      AS total_memories,
    count(e.memory_id) FILTER (WHERE e.present)                              AS present_memories,
    count(e.memory_id) FILTER (WHERE e.sync_state = 'migrating')             AS migrating_memories,
    count(e.memory_id) FILTER (WHERE e.sync_state = 'failed')                AS failed_memories,
    coalesce(sum(e.size_bytes) FILTER (WHERE e.sync_state = 'migrating'), 0) AS bytes_left,
    EXISTS (SELECT 1 FROM storage_pins p WHERE p.gallery_id = g.id AND p.backend = b.backend) AS pinned
FROM galleries g
CROSS JOIN LATERAL (
    SELECT DISTINCT e.backend FROM gallery_items gi
      JOIN storage_edges e ON e.memory_id = gi.memory_id AND e.artifact = 'asset'
     WHERE gi.gallery_id = g.id
    UNION
    SELECT p.backend FROM storage_pins p WHERE p.gallery_id = g.id
) b
LEFT JOIN gallery_items gi ON gi.gallery_id = g.id
LEFT JOIN storage_edges e ON e.memory_id = gi.memory_id AND e.artifact = 'asset' AND e.backend = b.backend
GROUP BY g.id, g.user_id, b.backend;

-- ---------------------------------------------------------------------------
-- Rights
-- ---------------------------------------------------------------------------

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON storage_pins TO mvault_app';
    EXECUTE 'GRANT SELECT ON memory_backend_presence, gallery_backend_presence TO mvault_app';
    EXECUTE 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO mvault_app';
  END IF;
  -- 0018's rule: a later table is granted to mvault_worker by its
  -- migration (storage_pins holds no names)
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_worker') THEN
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON storage_pins TO mvault_worker';
    EXECUTE 'GRANT SELECT ON memory_backend_presence, gallery_backend_presence TO mvault_worker';
  END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Edges for what exists already (seed 001, item 81): metadata edges for
-- every memory, asset edges for every uploaded current original.
-- ---------------------------------------------------------------------------

ALTER TABLE memories NO FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_items NO FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_assets NO FORCE ROW LEVEL SECURITY;
ALTER TABLE storage_edges NO FORCE ROW LEVEL SECURITY;
INSERT INTO storage_edges (memory_id, memory_type, artifact, backend, present, location, last_synced_at)
  SELECT m.id, m.type, 'metadata', 'neon-db', true, 'memories/' || m.id, now() FROM memories m
  ON CONFLICT DO NOTHING;
INSERT INTO storage_edges (memory_id, memory_type, artifact, backend, present, location, content_hash,
                           size_bytes, last_synced_at)
  SELECT m.id, m.type, 'asset', a.storage_backend::text::backend_t, true, a.storage_key, a.content_hash, a.bytes,
         a.updated_at
    FROM memories m
    JOIN memory_items i ON i.memory_id = m.id
    JOIN memory_assets a ON a.id = i.primary_asset_id
   WHERE a.upload_status = 'completed' AND a.storage_backend IS NOT NULL AND a.lifecycle_status <> 'deleted'
  ON CONFLICT DO NOTHING;
ALTER TABLE memories FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_items FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_assets FORCE ROW LEVEL SECURITY;
ALTER TABLE storage_edges FORCE ROW LEVEL SECURITY;
