-- 0018: a role for `mvaultfs worker` that runs every user's jobs and reads
-- no user's names (issue 12).
--
-- A worker acts for each job's user in turn (mvault.user_id, as a trusted
-- session may), so row-level security still checks every row a job step
-- touches.  But a trusted session could read everything a user can, names
-- included.  Members of mvault_worker are trusted to act for users and get
-- the table rights of mvault_app except reading the columns that hold what
-- a person named or wrote: file and folder names, titles, descriptions,
-- tags, prompts, extended attributes, the content of plain files, the
-- secret of an S3 configuration, an upload session's token.  They may
-- still write those columns (a step that moves a row writes them back
-- unread), and they may not make users or login roles.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_worker') THEN
    CREATE ROLE mvault_worker NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION mvault_trusted() RETURNS boolean
  LANGUAGE plpgsql STABLE
  AS $$
BEGIN
  RETURN pg_has_role(session_user, 'mvault_admin', 'MEMBER')
      OR pg_has_role(session_user, 'mvault_worker', 'MEMBER')
      OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND rolsuper);
END
$$;

-- What the worker may not read.
CREATE TABLE mvault_private_columns (
  table_name  name NOT NULL,
  column_name name NOT NULL,
  PRIMARY KEY (table_name, column_name)
);
INSERT INTO mvault_private_columns VALUES
  ('memory_items', 'display_name'), ('folders', 'name'), ('plain_files', 'name'), ('plain_files', 'content'),
  ('galleries', 'name'), ('galleries', 'description'), ('user_collections', 'name'),
  ('user_collections', 'description'), ('memories', 'title'), ('memories', 'description'),
  ('inode_xattrs', 'name'), ('inode_xattrs', 'value'), ('user_library', 'custom_title'), ('user_library', 'tags'),
  ('user_library', 'original_prompt'), ('workspace_assets', 'original_prompt'),
  ('workspace_assets', 'generation_settings'), ('s3_configurations', 'secret_access_key'),
  ('upload_sessions', 'session_token'), ('idempotency_keys', 'response');

-- The rights: mvault_app's tables, every column writable, readable but
-- the private ones.  mvault_logins and users: only what every session has.
DO $$
DECLARE
  t record;
  cols text;
BEGIN
  EXECUTE 'GRANT USAGE ON SCHEMA public TO mvault_worker';
  EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO mvault_worker';
  FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind = 'r'
              AND c.relname NOT IN ('mvault_logins', 'mvault_private_columns', 'schema_migrations')
              AND has_table_privilege('mvault_app', c.oid, 'SELECT')
  LOOP
    SELECT string_agg(quote_ident(a.attname), ', ') INTO cols
      FROM pg_attribute a
     WHERE a.attrelid = ('public.' || quote_ident(t.relname))::regclass AND a.attnum > 0 AND NOT a.attisdropped
       AND NOT EXISTS (SELECT 1 FROM mvault_private_columns p
                        WHERE p.table_name = t.relname AND p.column_name = a.attname);
    IF t.relname = 'users' THEN
      EXECUTE format('GRANT SELECT (%s) ON %I TO mvault_worker', cols, t.relname);
      CONTINUE;
    END IF;
    EXECUTE format('GRANT SELECT (%s) ON %I TO mvault_worker', cols, t.relname);
    IF has_table_privilege('mvault_app', ('public.' || quote_ident(t.relname))::regclass, 'INSERT') THEN
      EXECUTE format('GRANT INSERT ON %I TO mvault_worker', t.relname);
    END IF;
    IF has_table_privilege('mvault_app', ('public.' || quote_ident(t.relname))::regclass, 'UPDATE') THEN
      EXECUTE format('GRANT UPDATE ON %I TO mvault_worker', t.relname);
    END IF;
    IF has_table_privilege('mvault_app', ('public.' || quote_ident(t.relname))::regclass, 'DELETE') THEN
      EXECUTE format('GRANT DELETE ON %I TO mvault_worker', t.relname);
    END IF;
  END LOOP;
  EXECUTE 'REVOKE INSERT, UPDATE, DELETE ON mvault_clock FROM mvault_worker';
  EXECUTE 'GRANT SELECT ON schema_migrations TO mvault_worker';
END
$$;
GRANT EXECUTE ON FUNCTION mvault_blob_mine(uuid), mvault_blob_deletable(uuid, integer),
  mvault_blob_object_kept(uuid), mvault_blob_forget(uuid) TO mvault_worker;

-- A file's name for a log line or a job's note, when the session may read
-- it (a user's own role, an operator); NULL for a worker.
CREATE FUNCTION mvault_item_name(p_item uuid) RETURNS text
  LANGUAGE plpgsql STABLE
  AS $$
BEGIN
  IF has_column_privilege('memory_items', 'display_name', 'SELECT') THEN
    RETURN (SELECT display_name FROM memory_items WHERE id = p_item);
  END IF;
  RETURN NULL;
END
$$;

-- Gives P_ROLE (made if missing) the worker's rights, with password
-- verifier P_VERIFIER (NULL: left as it is).  The owner side's.
CREATE FUNCTION mvault_worker_add(p_role name, p_verifier text) RETURNS void
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF NOT mvault_operator() THEN
    RAISE EXCEPTION 'only the owner side may make worker roles' USING ERRCODE = '42501';
  END IF;
  IF EXISTS (SELECT 1 FROM mvault_logins WHERE role_name = p_role) THEN
    RAISE EXCEPTION 'role % is a user''s', p_role USING ERRCODE = '42710';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role AND pg_has_role(oid, 'mvault_app', 'MEMBER')) THEN
    RAISE EXCEPTION 'role % has more rights than a role in mvault_worker may have (it reads names)', p_role
      USING ERRCODE = '42501';
  END IF;
  PERFORM mvault_login_role(p_role, p_verifier, 'mvault_worker');
END
$$;
REVOKE EXECUTE ON FUNCTION mvault_worker_add(name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mvault_worker_add(name, text) TO mvault_admin;
