-- 0001_schema.sql - initial mvaultfs metadata schema (PostgreSQL 15).
--
-- Sources: seeds 000 (memories, assets, blobs, jobs), 001 (storage edges and
-- presence views) and 003 (workspace, library, collections).  Decisions where
-- the seeds are silent or disagree are listed in SCHEMA_NOTES.md.
-- Run by the daemon inside its own transaction: no BEGIN/COMMIT here.
-- Row-level security is added by a later migration.

-- ---------------------------------------------------------------------------
-- Enums
-- ---------------------------------------------------------------------------

-- seed 000
CREATE TYPE memory_status_t AS ENUM ('pending', 'active', 'failed', 'tombstoned', 'deleted');
CREATE TYPE asset_upload_status_t AS ENUM ('pending', 'uploading', 'completed', 'failed');
CREATE TYPE asset_lifecycle_status_t AS ENUM ('active', 'tombstoned', 'deleted');
CREATE TYPE processing_status_t AS ENUM ('pending', 'processing', 'completed', 'failed');
-- used by seed 000 but never defined there
CREATE TYPE storage_backend_t AS ENUM ('local', 's3', 'vercel-blob', 'icp-canister');

-- seed 001
CREATE TYPE memory_type_t AS ENUM ('image', 'video', 'note', 'document', 'audio');
CREATE TYPE artifact_t AS ENUM ('metadata', 'asset');
CREATE TYPE backend_t AS ENUM ('neon-db', 'vercel-blob', 'icp-canister', 's3', 'local');
CREATE TYPE sync_t AS ENUM ('idle', 'migrating', 'failed');

-- ---------------------------------------------------------------------------
-- Inode numbers of filesystem entries (below 1000: virtual folders)
-- ---------------------------------------------------------------------------

CREATE SEQUENCE fs_ino_seq START 1000;

-- ---------------------------------------------------------------------------
-- Generic updated_at maintenance (seed 001 item 9)
-- ---------------------------------------------------------------------------

CREATE FUNCTION set_updated_at()
RETURNS trigger AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

-- ---------------------------------------------------------------------------
-- Users (stands in for auth.users / users of the web application)
-- ---------------------------------------------------------------------------

CREATE TABLE users (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------
-- Memories (seed 000 section 2)
-- ---------------------------------------------------------------------------

CREATE TABLE memories (
    id          uuid            PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid            NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    type        memory_type_t   NOT NULL DEFAULT 'document',
    title       text,
    description text,
    status      memory_status_t NOT NULL DEFAULT 'pending',
    expires_at  timestamptz,
    created_by  uuid            NOT NULL REFERENCES users(id),
    updated_by  uuid            REFERENCES users(id),
    created_at  timestamptz     NOT NULL DEFAULT now(),
    updated_at  timestamptz     NOT NULL DEFAULT now(),
    CONSTRAINT memories_expires_at_check CHECK (expires_at IS NULL OR status = 'pending')
);

CREATE INDEX memories_user_id_idx ON memories (user_id);
CREATE INDEX memories_status_updated_idx ON memories (status, updated_at DESC);
CREATE INDEX memories_expires_at_idx ON memories (expires_at);

-- ---------------------------------------------------------------------------
-- Memory items: per-file identity (seed 000 section 3)
-- ---------------------------------------------------------------------------

CREATE TABLE memory_items (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    memory_id        uuid        NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    user_id          uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ino              bigint      NOT NULL UNIQUE DEFAULT nextval('fs_ino_seq'),
    display_name     text        NOT NULL,
    primary_asset_id uuid,       -- FK added below (memory_assets is created later)
    mode             integer     NOT NULL DEFAULT 420,   -- 0644 permission bits
    mtime            timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX memory_items_memory_id_idx ON memory_items (memory_id);
CREATE INDEX memory_items_primary_asset_idx ON memory_items (primary_asset_id);
CREATE INDEX memory_items_user_name_idx ON memory_items (user_id, display_name, ino);

-- ---------------------------------------------------------------------------
-- Blobs: content-addressed, ref-counted (seed 000, storage CRUD section 3)
-- ---------------------------------------------------------------------------

CREATE TABLE blobs (
    id               uuid              PRIMARY KEY DEFAULT gen_random_uuid(),
    content_hash     text              NOT NULL UNIQUE,   -- SHA-256
    storage_backend  storage_backend_t NOT NULL,
    storage_key      text              NOT NULL,
    bucket           text,
    bytes            bigint            NOT NULL,
    mime_type        text              NOT NULL,
    ref_count        integer           NOT NULL DEFAULT 1,
    created_at       timestamptz       NOT NULL DEFAULT now(),
    last_accessed_at timestamptz       NOT NULL DEFAULT now(),
    CONSTRAINT blobs_ref_count_check CHECK (ref_count >= 0)
);

CREATE INDEX blobs_content_hash_idx ON blobs (content_hash);
CREATE INDEX blobs_storage_idx ON blobs (storage_backend, storage_key);
CREATE INDEX blobs_ref_count_idx ON blobs (ref_count);

-- ---------------------------------------------------------------------------
-- Memory assets: originals and their variants (seed 000 sections 4 and
-- storage CRUD 1).  lifecycle_status is the single deletion status.
-- ---------------------------------------------------------------------------

CREATE TABLE memory_assets (
    id                  uuid                     PRIMARY KEY DEFAULT gen_random_uuid(),
    memory_id           uuid                     NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    asset_type          text                     NOT NULL DEFAULT 'original',
    blob_id             uuid                     REFERENCES blobs(id),
    storage_backend     storage_backend_t,
    storage_key         text,
    bucket              text,
    bytes               bigint                   NOT NULL DEFAULT 0,
    mime_type           text                     NOT NULL DEFAULT 'application/octet-stream',

    -- per-file identity
    group_id            uuid                     NOT NULL,
    memory_item_id      uuid                     REFERENCES memory_items(id) ON DELETE CASCADE,

    -- variants (NULL = original)
    variant_of_asset_id uuid                     REFERENCES memory_assets(id) ON DELETE CASCADE,
    variant_type        text,

    -- processing metadata
    recipe_version      text                     DEFAULT 'v1',
    transform_spec      jsonb,

    -- asset metadata
    width               integer,
    height              integer,
    color_space         text,
    icc_profile         text,
    megapixels          integer,

    -- three distinct statuses
    upload_status       asset_upload_status_t    NOT NULL DEFAULT 'pending',
    processing_status   processing_status_t      NOT NULL DEFAULT 'pending',
    lifecycle_status    asset_lifecycle_status_t NOT NULL DEFAULT 'active',
    processing_error    text,

    storage_visibility  text                     DEFAULT 'private',

    -- content hashing for deduplication
    content_hash        text,                    -- SHA-256
    computed_by         text,

    etag                text,

    retry_count         integer                  NOT NULL DEFAULT 0,
    max_retries         integer                  NOT NULL DEFAULT 3,

    legal_hold          boolean                  NOT NULL DEFAULT false,

    created_at          timestamptz              NOT NULL DEFAULT now(),
    updated_at          timestamptz              NOT NULL DEFAULT now(),

    CONSTRAINT memory_assets_asset_type_check
        CHECK (asset_type IN ('original', 'display', 'thumb')),
    CONSTRAINT memory_assets_variant_type_check
        CHECK (variant_type IN ('display', 'thumb')),
    CONSTRAINT memory_assets_storage_visibility_check
        CHECK (storage_visibility IN ('public', 'private')),
    CONSTRAINT memory_assets_computed_by_check
        CHECK (computed_by IN ('client', 'server')),
    CONSTRAINT memory_assets_group_variant_unique
        UNIQUE (group_id, variant_type),
    CONSTRAINT memory_assets_variant_of_unique
        UNIQUE (variant_of_asset_id, variant_type),
    CONSTRAINT memory_assets_variant_check
        CHECK ((variant_of_asset_id IS NULL) = (variant_type IS NULL)),
    CONSTRAINT memory_assets_processing_status_check
        CHECK (processing_status = 'completed' OR (width IS NULL AND height IS NULL)),
    CONSTRAINT memory_assets_megapixels_check
        CHECK (megapixels <= 80)
);

CREATE INDEX memory_assets_memory_id_idx ON memory_assets (memory_id);
CREATE INDEX memory_assets_memory_item_id_idx ON memory_assets (memory_item_id);
CREATE INDEX memory_assets_content_hash_idx ON memory_assets (content_hash);
CREATE INDEX memory_assets_blob_id_idx ON memory_assets (blob_id);
CREATE INDEX memory_assets_lifecycle_status_idx ON memory_assets (lifecycle_status);

-- circular reference memory_items <-> memory_assets
ALTER TABLE memory_items
    ADD CONSTRAINT memory_items_primary_asset_id_fkey
    FOREIGN KEY (primary_asset_id) REFERENCES memory_assets(id) ON DELETE SET NULL;

-- ---------------------------------------------------------------------------
-- Upload sessions (seed 000, upload hooks section)
-- ---------------------------------------------------------------------------

CREATE TABLE upload_sessions (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    memory_id      uuid        REFERENCES memories(id) ON DELETE CASCADE,
    session_token  text        NOT NULL UNIQUE,
    status         text        NOT NULL DEFAULT 'active',
    total_files    integer     NOT NULL,
    uploaded_files integer     NOT NULL DEFAULT 0,
    failed_files   integer     NOT NULL DEFAULT 0,
    expires_at     timestamptz NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT upload_sessions_status_check
        CHECK (status IN ('active', 'completed', 'aborted', 'expired'))
);

CREATE INDEX upload_sessions_token_idx ON upload_sessions (session_token);
CREATE INDEX upload_sessions_user_status_idx ON upload_sessions (user_id, status);
CREATE INDEX upload_sessions_expires_idx ON upload_sessions (expires_at);
CREATE INDEX upload_sessions_memory_idx ON upload_sessions (memory_id);

-- ---------------------------------------------------------------------------
-- Background jobs (seed 000 section 6)
-- ---------------------------------------------------------------------------

CREATE TABLE background_jobs (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    type               text        NOT NULL,
    payload            jsonb       NOT NULL,
    payload_hash       text        NOT NULL,
    status             text        NOT NULL DEFAULT 'pending',
    locked_at          timestamptz,
    locked_by          text,
    run_at             timestamptz,
    visibility_timeout integer     DEFAULT 300,   -- seconds
    scheduled_at       timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    completed_at       timestamptz,
    error              text,
    retry_count        integer     NOT NULL DEFAULT 0,
    max_retries        integer     NOT NULL DEFAULT 3,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT background_jobs_type_check
        CHECK (type IN ('cleanup_pending', 'asset_delete', 'content_hash_compute', 'process_assets')),
    CONSTRAINT background_jobs_status_check
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'retry')),
    CONSTRAINT background_jobs_type_payload_hash_unique
        UNIQUE (type, payload_hash)
);

CREATE INDEX background_jobs_status_scheduled_idx ON background_jobs (status, scheduled_at);
CREATE INDEX background_jobs_type_idx ON background_jobs (type);
CREATE INDEX background_jobs_retry_idx ON background_jobs (retry_count);
CREATE INDEX background_jobs_locked_idx ON background_jobs (locked_at, locked_by);

-- ---------------------------------------------------------------------------
-- Asset deletion outbox (seed 000, storage CRUD section 2)
-- ---------------------------------------------------------------------------

CREATE TABLE asset_delete_jobs (
    id            uuid              PRIMARY KEY DEFAULT gen_random_uuid(),
    asset_id      uuid              NOT NULL REFERENCES memory_assets(id) ON DELETE CASCADE,
    blob_id       uuid              REFERENCES blobs(id) ON DELETE SET NULL,
    backend       storage_backend_t NOT NULL,
    backend_key   text              NOT NULL,
    status        text              NOT NULL DEFAULT 'pending',
    retry_count   integer           NOT NULL DEFAULT 0,
    max_retries   integer           NOT NULL DEFAULT 3,
    error_message text,
    created_at    timestamptz       NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    CONSTRAINT asset_delete_jobs_status_check
        CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled'))
);

CREATE INDEX asset_delete_jobs_status_idx ON asset_delete_jobs (status);
CREATE INDEX asset_delete_jobs_created_idx ON asset_delete_jobs (created_at);
CREATE INDEX asset_delete_jobs_asset_idx ON asset_delete_jobs (asset_id);
CREATE INDEX asset_delete_jobs_blob_idx ON asset_delete_jobs (blob_id);

-- ---------------------------------------------------------------------------
-- Idempotency keys (seed 000 section 5)
-- ---------------------------------------------------------------------------

CREATE TABLE idempotency_keys (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    route      text        NOT NULL,
    key        text        NOT NULL,
    response   jsonb       NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_user_route_key_unique UNIQUE (user_id, route, key)
);

CREATE INDEX idempotency_keys_expires_at_idx ON idempotency_keys (expires_at);

-- ---------------------------------------------------------------------------
-- S3 configurations (seed 000, AWS S3 section); keys are stored encrypted
-- ---------------------------------------------------------------------------

CREATE TABLE s3_configurations (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id           uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name              text        NOT NULL,
    bucket            text        NOT NULL,
    region            text        NOT NULL,
    endpoint          text,                      -- NULL = AWS
    path_style        boolean     NOT NULL DEFAULT false,
    access_key_id     text        NOT NULL,      -- encrypted
    secret_access_key text        NOT NULL,      -- encrypted
    is_default        boolean     NOT NULL DEFAULT false,
    is_active         boolean     NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX s3_configs_user_default_idx
    ON s3_configurations (user_id, is_default) WHERE is_default = true;
CREATE INDEX s3_configs_user_active_idx ON s3_configurations (user_id, is_active);

-- ---------------------------------------------------------------------------
-- Storage edges: where each artifact of a memory is present (seed 001)
-- ---------------------------------------------------------------------------

CREATE TABLE storage_edges (
    id             uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    memory_id      uuid          NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    memory_type    memory_type_t NOT NULL,
    artifact       artifact_t    NOT NULL,
    backend        backend_t     NOT NULL,
    present        boolean       NOT NULL DEFAULT false,
    location       text,
    content_hash   text,
    size_bytes     bigint,
    sync_state     sync_t        NOT NULL DEFAULT 'idle',
    sync_error     text,
    last_synced_at timestamptz,
    created_at     timestamptz   NOT NULL DEFAULT now(),
    updated_at     timestamptz   NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX ux_edges_memory_artifact_backend
    ON storage_edges (memory_id, memory_type, artifact, backend);
CREATE INDEX ix_edges_memory ON storage_edges (memory_id, memory_type);
CREATE INDEX ix_edges_backend_present ON storage_edges (backend, artifact, present);
CREATE INDEX ix_edges_sync_state ON storage_edges (sync_state);

-- ---------------------------------------------------------------------------
-- Collections, library, workspace (seed 003)
-- ---------------------------------------------------------------------------

CREATE TABLE user_collections (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ino         bigint      NOT NULL UNIQUE DEFAULT nextval('fs_ino_seq'),
    name        text        NOT NULL,
    description text,
    asset_count integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_collections_user_name_unique UNIQUE (user_id, name),
    CONSTRAINT user_collections_asset_count_check CHECK (asset_count >= 0)
);

CREATE INDEX idx_collections_user ON user_collections (user_id, created_at DESC);

CREATE TABLE user_library (
    id               uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid          NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    memory_id        uuid          NOT NULL UNIQUE REFERENCES memories(id) ON DELETE CASCADE,

    -- asset basics
    asset_type       text          NOT NULL,
    storage_path     text          NOT NULL,
    file_size_bytes  bigint        NOT NULL,
    mime_type        text          NOT NULL,
    duration_seconds numeric(10,3),

    -- generation metadata
    original_prompt  text          NOT NULL DEFAULT '',
    model_used       text          NOT NULL DEFAULT 'mvaultfs',
    generation_seed  bigint,

    -- organization
    collection_id    uuid          REFERENCES user_collections(id) ON DELETE SET NULL,
    custom_title     text,
    tags             text[]        DEFAULT '{}',
    is_favorite      boolean       DEFAULT false,
    visibility       text          DEFAULT 'private',

    created_at       timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now(),

    CONSTRAINT user_library_asset_type_check
        CHECK (asset_type IN ('image', 'video', 'note', 'document', 'audio')),
    CONSTRAINT user_library_visibility_check
        CHECK (visibility IN ('private', 'unlisted', 'public'))
);

CREATE INDEX idx_library_user_created ON user_library (user_id, created_at DESC);
CREATE INDEX idx_library_collection ON user_library (collection_id);

CREATE TABLE workspace_assets (
    id                  uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid          NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    memory_id           uuid          NOT NULL UNIQUE REFERENCES memories(id) ON DELETE CASCADE,

    -- asset basics
    asset_type          text          NOT NULL,
    temp_storage_path   text          NOT NULL,
    file_size_bytes     bigint        NOT NULL,
    mime_type           text          NOT NULL,
    duration_seconds    numeric(10,3),

    -- generation context
    job_id              uuid          NOT NULL DEFAULT gen_random_uuid(),
    asset_index         integer       NOT NULL DEFAULT 0,
    generation_seed     bigint        NOT NULL DEFAULT 0,
    original_prompt     text          NOT NULL DEFAULT '',
    model_used          text          NOT NULL DEFAULT 'mvaultfs',
    generation_settings jsonb         DEFAULT '{}',

    -- auto-cleanup
    created_at          timestamptz   NOT NULL DEFAULT now(),
    expires_at          timestamptz   DEFAULT (now() + interval '7 days'),

    CONSTRAINT workspace_assets_user_job_index_unique UNIQUE (user_id, job_id, asset_index),
    CONSTRAINT workspace_assets_asset_type_check
        CHECK (asset_type IN ('image', 'video', 'note', 'document', 'audio'))
);

CREATE INDEX idx_workspace_user_created ON workspace_assets (user_id, created_at DESC);
CREATE INDEX idx_workspace_expires ON workspace_assets (expires_at);

CREATE FUNCTION cleanup_expired_workspace_assets()
RETURNS void AS $$
BEGIN
    DELETE FROM workspace_assets
    WHERE expires_at < now();
END;
$$ LANGUAGE plpgsql;

-- Keeps user_collections.asset_count equal to the number of library rows in
-- each collection: insert, delete, and moves between collections.
CREATE FUNCTION update_collection_asset_count()
RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.collection_id IS NOT NULL THEN
            UPDATE user_collections
            SET asset_count = asset_count + 1
            WHERE id = NEW.collection_id;
        END IF;
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        IF OLD.collection_id IS NOT NULL THEN
            UPDATE user_collections
            SET asset_count = asset_count - 1
            WHERE id = OLD.collection_id;
        END IF;
        RETURN OLD;
    ELSIF TG_OP = 'UPDATE' THEN
        IF OLD.collection_id IS DISTINCT FROM NEW.collection_id THEN
            IF OLD.collection_id IS NOT NULL THEN
                UPDATE user_collections
                SET asset_count = asset_count - 1
                WHERE id = OLD.collection_id;
            END IF;
            IF NEW.collection_id IS NOT NULL THEN
                UPDATE user_collections
                SET asset_count = asset_count + 1
                WHERE id = NEW.collection_id;
            END IF;
        END IF;
        RETURN NEW;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trigger_update_collection_asset_count
    AFTER INSERT OR DELETE OR UPDATE OF collection_id ON user_library
    FOR EACH ROW
    EXECUTE FUNCTION update_collection_asset_count();

-- ---------------------------------------------------------------------------
-- Galleries: albums; a memory may be in many galleries
-- ---------------------------------------------------------------------------

CREATE TABLE galleries (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ino         bigint      NOT NULL UNIQUE DEFAULT nextval('fs_ino_seq'),
    name        text        NOT NULL,
    description text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT galleries_user_name_unique UNIQUE (user_id, name)
);

CREATE TABLE gallery_items (
    gallery_id uuid        NOT NULL REFERENCES galleries(id) ON DELETE CASCADE,
    memory_id  uuid        NOT NULL REFERENCES memories(id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    position   integer     NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gallery_id, memory_id)
);

CREATE INDEX gallery_items_memory_idx ON gallery_items (memory_id);
CREATE INDEX gallery_items_user_idx ON gallery_items (user_id);

-- ---------------------------------------------------------------------------
-- updated_at triggers on every table that has updated_at
-- ---------------------------------------------------------------------------

CREATE TRIGGER memories_set_updated_at BEFORE UPDATE ON memories
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER memory_items_set_updated_at BEFORE UPDATE ON memory_items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER memory_assets_set_updated_at BEFORE UPDATE ON memory_assets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER upload_sessions_set_updated_at BEFORE UPDATE ON upload_sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER s3_configurations_set_updated_at BEFORE UPDATE ON s3_configurations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER storage_edges_set_updated_at BEFORE UPDATE ON storage_edges
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER user_collections_set_updated_at BEFORE UPDATE ON user_collections
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER user_library_set_updated_at BEFORE UPDATE ON user_library
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER galleries_set_updated_at BEFORE UPDATE ON galleries
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ---------------------------------------------------------------------------
-- Presence views (seed 001).  security_invoker so that the row-level
-- security added later applies through the views as well.
-- ---------------------------------------------------------------------------

-- One row per memory: which artifact is present on which backend.
CREATE VIEW memory_presence WITH (security_invoker = true) AS
SELECT
    m.id      AS memory_id,
    m.user_id AS user_id,
    m.type    AS memory_type,
    COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'metadata' AND e.backend = 'neon-db'), false)      AS meta_neon,
    COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'asset'    AND e.backend = 'vercel-blob'), false)  AS asset_blob,
    COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'metadata' AND e.backend = 'icp-canister'), false) AS meta_icp,
    COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'asset'    AND e.backend = 'icp-canister'), false) AS asset_icp,
    COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'asset'    AND e.backend = 's3'), false)           AS asset_s3,
    COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'asset'    AND e.backend = 'local'), false)        AS asset_local,
    COALESCE(bool_or(e.sync_state = 'migrating'), false)                                                       AS syncing
FROM memories m
LEFT JOIN storage_edges e ON e.memory_id = m.id
GROUP BY m.id, m.user_id, m.type;

-- One row per gallery: how much of it is stored forever (on ICP).  Edges are
-- read per gallery item through ix_edges_memory (no scan of all memories).
CREATE VIEW gallery_presence WITH (security_invoker = true) AS
SELECT
    g.id      AS gallery_id,
    g.user_id AS user_id,
    count(gi.memory_id)                                            AS total_memories,
    count(gi.memory_id) FILTER (WHERE p.meta_icp AND p.asset_icp)  AS icp_complete_memories,
    count(gi.memory_id) FILTER (WHERE p.meta_icp OR p.asset_icp)   AS icp_any_memories,
    (count(gi.memory_id) > 0
     AND bool_and(p.meta_icp AND p.asset_icp))                     AS stored_forever,
    COALESCE(bool_or(p.meta_icp OR p.asset_icp)
     AND NOT bool_and(p.meta_icp AND p.asset_icp), false)          AS partial_icp
FROM galleries g
LEFT JOIN gallery_items gi ON gi.gallery_id = g.id
LEFT JOIN LATERAL (
    SELECT
        COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'metadata'), false) AS meta_icp,
        COALESCE(bool_or(e.present) FILTER (WHERE e.artifact = 'asset'), false)    AS asset_icp
    FROM storage_edges e
    WHERE e.memory_id = gi.memory_id
      AND e.backend = 'icp-canister'
) p ON gi.memory_id IS NOT NULL
GROUP BY g.id, g.user_id;

-- Edges currently being copied to a backend.
CREATE VIEW sync_status WITH (security_invoker = true) AS
SELECT
    e.id AS edge_id,
    e.memory_id,
    m.user_id,
    e.memory_type,
    e.artifact,
    e.backend,
    e.present,
    e.sync_state,
    e.sync_error,
    e.last_synced_at,
    e.updated_at,
    now() - e.updated_at AS sync_duration
FROM storage_edges e
JOIN memories m ON m.id = e.memory_id
WHERE e.sync_state = 'migrating';
