-- 0017: the cross-user blob steps act only on the caller's own blobs
-- (issue 12).  mvault_blob_deletable, mvault_blob_object_kept and
-- mvault_blob_forget run as mvault_jobs, which sees every user's rows, and
-- any role could call them with any blob id: a user who learnt another's
-- blob id could ask about it, or have its tombstoned assets marked deleted.
-- Each is now a guard in front of the old body (renamed *_any, callable
-- only by mvault_jobs): the blob must be the acting user's (mvault_uid(),
-- from the login, or the job's user for a trusted worker), or the caller
-- the owner side acting for nobody.  Another user's blob gets the answers
-- of a blob that does not exist ('the blob is gone', 0 assets): a guessed
-- id tells nothing.

CREATE FUNCTION mvault_blob_mine(p_blob uuid) RETURNS boolean
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
  AS $$SELECT mvault_operator()
             OR NOT EXISTS (SELECT 1 FROM blobs WHERE id = p_blob)
             OR EXISTS (SELECT 1 FROM blobs WHERE id = p_blob AND user_id = mvault_uid())$$;

DO $$
BEGIN
  ALTER FUNCTION mvault_blob_deletable(uuid, integer) RENAME TO mvault_blob_deletable_any;
  ALTER FUNCTION mvault_blob_object_kept(uuid) RENAME TO mvault_blob_object_kept_any;
  ALTER FUNCTION mvault_blob_forget(uuid) RENAME TO mvault_blob_forget_any;
  REVOKE EXECUTE ON FUNCTION mvault_blob_deletable_any(uuid, integer), mvault_blob_object_kept_any(uuid),
    mvault_blob_forget_any(uuid) FROM PUBLIC;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    REVOKE EXECUTE ON FUNCTION mvault_blob_deletable_any(uuid, integer), mvault_blob_object_kept_any(uuid),
      mvault_blob_forget_any(uuid) FROM mvault_app;
  END IF;
END
$$;

CREATE FUNCTION mvault_blob_deletable(p_blob uuid, p_trash_days integer) RETURNS text
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public
  AS $$
BEGIN
  IF NOT mvault_blob_mine(p_blob) THEN
    RETURN 'the blob is gone';
  END IF;
  RETURN mvault_blob_deletable_any(p_blob, p_trash_days);
END
$$;

CREATE FUNCTION mvault_blob_object_kept(p_blob uuid) RETURNS text
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public
  AS $$
BEGIN
  IF NOT mvault_blob_mine(p_blob) THEN
    RETURN 'the blob is gone';
  END IF;
  RETURN mvault_blob_object_kept_any(p_blob);
END
$$;

CREATE FUNCTION mvault_blob_forget(p_blob uuid) RETURNS integer
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
  AS $$
BEGIN
  IF NOT mvault_blob_mine(p_blob) THEN
    RETURN 0;
  END IF;
  RETURN mvault_blob_forget_any(p_blob);
END
$$;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_jobs') THEN
    EXECUTE 'GRANT CREATE ON SCHEMA public TO mvault_jobs';
    EXECUTE 'ALTER FUNCTION mvault_blob_mine(uuid) OWNER TO mvault_jobs';
    EXECUTE 'ALTER FUNCTION mvault_blob_deletable(uuid, integer) OWNER TO mvault_jobs';
    EXECUTE 'ALTER FUNCTION mvault_blob_object_kept(uuid) OWNER TO mvault_jobs';
    EXECUTE 'ALTER FUNCTION mvault_blob_forget(uuid) OWNER TO mvault_jobs';
    EXECUTE 'REVOKE CREATE ON SCHEMA public FROM mvault_jobs';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT EXECUTE ON FUNCTION mvault_blob_mine(uuid), mvault_blob_deletable(uuid, integer),'
            ' mvault_blob_object_kept(uuid), mvault_blob_forget(uuid) TO mvault_app';
  END IF;
END
$$;
