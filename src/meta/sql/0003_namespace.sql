-- 0003: what the filesystem's namespace needs beyond the seeds, and
-- row-level security for every table that belongs to a user.

-- A clock tests can move: every expiry and grace-period check compares
-- with mvault_now(), which is now() plus the skew kept here (normally none).
CREATE TABLE mvault_clock (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  skew interval NOT NULL DEFAULT '0'
);
INSERT INTO mvault_clock DEFAULT VALUES;

CREATE FUNCTION mvault_now() RETURNS timestamptz
  LANGUAGE sql STABLE
  AS 'SELECT now() + coalesce((SELECT skew FROM mvault_clock), interval ''0'')';

-- When a file went to the trash: the grace period counts from here.
ALTER TABLE memory_assets ADD COLUMN tombstoned_at timestamptz;
CREATE INDEX memory_assets_tombstoned_at_idx ON memory_assets (tombstoned_at)
  WHERE tombstoned_at IS NOT NULL;

-- Folder listings walk a membership table in (owner, memory_id) order, so a
-- page costs the same whatever the library's size.
CREATE INDEX user_library_user_memory_idx ON user_library (user_id, memory_id);
CREATE INDEX user_library_collection_memory_idx ON user_library (collection_id, memory_id);
CREATE INDEX workspace_assets_user_memory_idx ON workspace_assets (user_id, memory_id);
CREATE INDEX memory_items_user_memory_idx ON memory_items (user_id, memory_id, ino);

-- The user a connection acts for, set by the daemon per connection.
CREATE FUNCTION mvault_uid() RETURNS uuid
  LANGUAGE sql STABLE
  AS 'SELECT nullif(current_setting(''mvault.user_id'', true), '''')::uuid';

-- Finding or making a user must work before the connection acts for one.
CREATE FUNCTION mvault_user_ensure(p_name text) RETURNS uuid
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
  AS $$
DECLARE
  uid uuid;
BEGIN
  INSERT INTO users (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
  SELECT id INTO uid FROM users WHERE name = p_name;
  RETURN uid;
END
$$;

-- The role the daemon works as: not the owner, so row-level security
-- applies to it.  Made only where the migrating role may make roles.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user
               AND (rolsuper OR rolcreaterole)) THEN
      CREATE ROLE mvault_app LOGIN NOSUPERUSER NOBYPASSRLS;
    ELSE
      RAISE NOTICE 'role mvault_app missing and cannot be created by %', current_user;
    END IF;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT USAGE ON SCHEMA public TO mvault_app';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO mvault_app';
    EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO mvault_app';
    EXECUTE 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO mvault_app';
    EXECUTE 'REVOKE INSERT, UPDATE, DELETE ON mvault_clock, schema_migrations FROM mvault_app';
    -- the current user may grant it to itself, to SET ROLE mvault_app
    IF current_user <> 'mvault_app' THEN
      EXECUTE format('GRANT mvault_app TO %I', current_user);
    END IF;
  END IF;
END
$$;

-- Row-level security: a user's rows are visible and writable only to
-- connections acting for that user.  FORCE applies it to the owner too
-- (superusers still bypass it: the daemon works as mvault_app).
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY users_self ON users USING (id = mvault_uid()) WITH CHECK (id = mvault_uid());

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['memories', 'memory_items', 'upload_sessions', 'idempotency_keys',
                           's3_configurations', 'workspace_assets', 'user_library',
                           'user_collections', 'galleries', 'gallery_items']
  LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I USING (user_id = mvault_uid())'
                   ' WITH CHECK (user_id = mvault_uid())', t || '_owner', t);
  END LOOP;
END
$$;

-- Tables that belong to a user through a memory or an asset.
ALTER TABLE memory_assets ENABLE ROW LEVEL SECURITY;
ALTER TABLE memory_assets FORCE ROW LEVEL SECURITY;
CREATE POLICY memory_assets_owner ON memory_assets
  USING (EXISTS (SELECT 1 FROM memories m WHERE m.id = memory_id))
  WITH CHECK (EXISTS (SELECT 1 FROM memories m WHERE m.id = memory_id));

ALTER TABLE storage_edges ENABLE ROW LEVEL SECURITY;
ALTER TABLE storage_edges FORCE ROW LEVEL SECURITY;
CREATE POLICY storage_edges_owner ON storage_edges
  USING (EXISTS (SELECT 1 FROM memories m WHERE m.id = memory_id))
  WITH CHECK (EXISTS (SELECT 1 FROM memories m WHERE m.id = memory_id));

ALTER TABLE asset_delete_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE asset_delete_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY asset_delete_jobs_owner ON asset_delete_jobs
  USING (EXISTS (SELECT 1 FROM memory_assets a WHERE a.id = asset_id))
  WITH CHECK (EXISTS (SELECT 1 FROM memory_assets a WHERE a.id = asset_id));

-- blobs and background_jobs stay without row-level security: a blob is
-- shared by every asset with those bytes (seed 000: content_hash is unique),
-- and jobs are the system's queue.  A blob row holds no user data but its
-- hash; see the decisions in the issue notes.
