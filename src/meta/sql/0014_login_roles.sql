-- 0014: who a connection acts for is decided by the database, not by the
-- client (issue 12).
--
-- Until now every daemon worked as mvault_app and named its user in the
-- setting mvault.user_id, which any client can set: whoever could log in as
-- mvault_app could read every library.  Now:
--
--   * each user has a login role of their own (made by `mvaultfs user add`),
--     recorded in mvault_logins, a mapping only the owner side may write;
--     mvault_uid() is the user mapped to session_user, which a client
--     cannot change (SET ROLE changes current_user only, and SET SESSION
--     AUTHORIZATION needs a superuser);
--   * only a trusted session -- a superuser, or a member of mvault_admin
--     (the role that migrated, i.e. the owner side) -- may still act for a
--     user by naming it in mvault.user_id: operators, tests, the embedded
--     default (whose cluster only its owner can reach) and `mvaultfs worker`;
--   * mvault_app becomes the NOLOGIN group role whose rights every user's
--     login role inherits; logging in as it is no longer possible, and a
--     session that is neither mapped nor trusted sees no user's rows;
--   * background_jobs (which names users and assets) gets row-level security;
--   * the owner side may make users itself (FORCE ROW LEVEL SECURITY applied
--     to it too, which made `mvault_user_ensure` fail on a managed
--     PostgreSQL whose owner role has no BYPASSRLS).

-- The owner side's role: made where the migrating role may make roles.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_admin') THEN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)) THEN
      RAISE EXCEPTION 'role % cannot make roles: run the migration as a superuser or a role with CREATEROLE',
        current_user USING ERRCODE = '42501';
    END IF;
    CREATE ROLE mvault_admin NOLOGIN NOSUPERUSER NOBYPASSRLS;
  END IF;
  IF current_user <> 'mvault_admin' AND NOT pg_has_role(current_user, 'mvault_admin', 'MEMBER') THEN
    EXECUTE format('GRANT mvault_admin TO %I', current_user);
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app' AND rolcanlogin) THEN
    ALTER ROLE mvault_app NOLOGIN;
  END IF;
END
$$;

-- A session an operator runs: may act for any user through mvault.user_id.
-- (PL/pgSQL, here and below: its plans are kept for the session, where a
-- SQL function that cannot be inlined is planned again in every statement
-- that calls it -- three times the cost of a stat, measured.)
CREATE FUNCTION mvault_trusted() RETURNS boolean
  LANGUAGE plpgsql STABLE
  AS $$
BEGIN
  RETURN pg_has_role(session_user, 'mvault_admin', 'MEMBER')
      OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = session_user AND rolsuper);
END
$$;

-- A trusted session acting for nobody: the owner side at work (adding
-- users, `mvaultfs worker` between jobs).  Acting for a user, a trusted
-- session sees what that user sees, no more.
CREATE FUNCTION mvault_operator() RETURNS boolean
  LANGUAGE plpgsql STABLE
  AS $$
BEGIN
  RETURN nullif(current_setting('mvault.user_id', true), '') IS NULL AND mvault_trusted();
END
$$;

-- Login role -> user.  A user may have several login roles (one per
-- machine, say); a role acts for one user.
CREATE TABLE mvault_logins (
  role_name  name        PRIMARY KEY,
  user_id    uuid        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mvault_logins_user_idx ON mvault_logins (user_id);
ALTER TABLE mvault_logins ENABLE ROW LEVEL SECURITY;
ALTER TABLE mvault_logins FORCE ROW LEVEL SECURITY;
CREATE POLICY mvault_logins_self ON mvault_logins FOR SELECT USING (role_name = session_user);
CREATE POLICY mvault_logins_admin ON mvault_logins USING ((SELECT mvault_operator()))
  WITH CHECK ((SELECT mvault_operator()));

-- The user this connection acts for: its login role's, else (trusted
-- sessions only) the one named in mvault.user_id, else none.
CREATE OR REPLACE FUNCTION mvault_uid() RETURNS uuid
  LANGUAGE plpgsql STABLE
  AS $$
DECLARE
  u uuid;
BEGIN
  SELECT l.user_id INTO u FROM mvault_logins l WHERE l.role_name = session_user;
  IF u IS NULL AND mvault_trusted() THEN
    u := nullif(current_setting('mvault.user_id', true), '')::uuid;
  END IF;
  RETURN u;
END
$$;

-- Who this connection is: the mapped user (NULL when the role is nobody's)
-- and whether it may act for others.
CREATE FUNCTION mvault_whoami(OUT user_id uuid, OUT user_name text, OUT trusted boolean)
  LANGUAGE sql STABLE
  AS $$SELECT l.user_id, u.name, mvault_trusted()
          FROM (SELECT 1) one
          LEFT JOIN mvault_logins l ON l.role_name = session_user
          LEFT JOIN users u ON u.id = l.user_id$$;

-- The owner side sees and makes users; a user sees only their own row.
CREATE POLICY users_admin ON users USING ((SELECT mvault_operator())) WITH CHECK ((SELECT mvault_operator()));

-- Finding or making a user by name is the owner side's.
CREATE OR REPLACE FUNCTION mvault_user_ensure(p_name text) RETURNS uuid
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
  AS $$
DECLARE
  uid uuid;
BEGIN
  IF NOT mvault_trusted() THEN
    RAISE EXCEPTION 'only the owner side may find or make users (role % is a user''s)', session_user
      USING ERRCODE = '42501';
  END IF;
  INSERT INTO users (name) VALUES (p_name) ON CONFLICT (name) DO NOTHING;
  SELECT id INTO uid FROM users WHERE name = p_name;
  RETURN uid;
END
$$;
REVOKE EXECUTE ON FUNCTION mvault_user_ensure(text) FROM PUBLIC, mvault_app;
GRANT EXECUTE ON FUNCTION mvault_user_ensure(text) TO mvault_admin;

-- Makes login role P_ROLE (if missing) a member of P_GROUP, with password
-- verifier P_VERIFIER (NULL: the role's password is left as it is).  A role
-- that exists already may have no more rights than such a member.
CREATE FUNCTION mvault_login_role(p_role name, p_verifier text, p_group name) RETURNS void
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role
             AND (rolsuper OR rolbypassrls OR rolcreaterole OR pg_has_role(oid, 'mvault_admin', 'MEMBER'))) THEN
    RAISE EXCEPTION 'role % has more rights than a role in % may have', p_role, p_group USING ERRCODE = '42501';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = p_role) THEN
    EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB INHERIT', p_role);
  END IF;
  IF p_verifier IS NOT NULL THEN
    EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L', p_role, p_verifier);
  END IF;
  EXECUTE format('GRANT %I TO %I', p_group, p_role);
END
$$;
REVOKE EXECUTE ON FUNCTION mvault_login_role(name, text, name) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mvault_login_role(name, text, name) TO mvault_admin;

-- Gives user P_NAME (made if missing) the login role P_ROLE, with password
-- verifier P_VERIFIER (a SCRAM secret made by the client, so no password
-- reaches the server's logs; NULL keeps the role's password).  A role that
-- exists already must be nobody else's and no more than a user's.
CREATE FUNCTION mvault_login_add(p_name text, p_role name, p_verifier text) RETURNS uuid
  LANGUAGE plpgsql
  AS $$
DECLARE
  uid uuid := mvault_user_ensure(p_name);
  other uuid;
BEGIN
  SELECT user_id INTO other FROM mvault_logins WHERE role_name = p_role;
  IF other IS NOT NULL AND other <> uid THEN
    RAISE EXCEPTION 'role % already acts for another user', p_role USING ERRCODE = '42710';
  END IF;
  PERFORM mvault_login_role(p_role, p_verifier, 'mvault_app');
  INSERT INTO mvault_logins (role_name, user_id) VALUES (p_role, uid) ON CONFLICT (role_name) DO NOTHING;
  RETURN uid;
END
$$;
REVOKE EXECUTE ON FUNCTION mvault_login_add(text, name, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mvault_login_add(text, name, text) TO mvault_admin;

-- The queue names users and their assets: each user sees their own jobs;
-- the owner side (`mvaultfs worker`) and the job functions see all.
ALTER TABLE background_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE background_jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY background_jobs_owner ON background_jobs
  USING (user_id = mvault_uid() OR (SELECT mvault_operator()))
  WITH CHECK (user_id = mvault_uid() OR (SELECT mvault_operator()));
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_jobs') THEN
    EXECUTE 'CREATE POLICY background_jobs_jobs ON background_jobs TO mvault_jobs USING (true) WITH CHECK (true)';
  END IF;
END
$$;

-- read by mvault_uid() in whatever role a policy or function runs as; the
-- policy shows each session its own row only
GRANT SELECT ON mvault_logins TO PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON mvault_logins TO mvault_admin;
GRANT EXECUTE ON FUNCTION mvault_trusted(), mvault_operator(), mvault_uid(), mvault_whoami() TO mvault_app;

-- mvault_uid() now reads a table, so it can no longer be inlined into the
-- policies: wrapped as a sub-select it is evaluated once per statement (an
-- InitPlan) rather than once per row where a policy is a filter.
DO $$
DECLARE
  p record;
  q text;
  c text;
BEGIN
  FOR p IN SELECT schemaname, tablename, policyname, qual, with_check FROM pg_policies
            WHERE schemaname = 'public'
              AND (qual LIKE '%mvault_uid()%' OR with_check LIKE '%mvault_uid()%')
  LOOP
    q := replace(p.qual, 'mvault_uid()', '(SELECT mvault_uid())');
    c := replace(p.with_check, 'mvault_uid()', '(SELECT mvault_uid())');
    EXECUTE format('ALTER POLICY %I ON %I.%I', p.policyname, p.schemaname, p.tablename)
      || CASE WHEN q IS NOT NULL THEN ' USING (' || q || ')' ELSE '' END
      || CASE WHEN c IS NOT NULL THEN ' WITH CHECK (' || c || ')' ELSE '' END;
  END LOOP;
END
$$;
