-- 0012: planner statistics that keep up with a bulk import.
--
-- Right after 10,000 files are copied into a new library the planner still
-- believes the tables are nearly empty (autovacuum analyzes a table only
-- once a tenth of it changed, and looks once a minute): listing that folder
-- took 2.1 s instead of 0.55 s, `find` 1.9 s instead of 0.3 s, and the
-- upload records fell behind the copy.  So the daemon asks for an ANALYZE of
-- the tables of the file path as its library grows (after 500, 1,000,
-- 2,000, ... recorded uploads, then every 20,000: meta_analyze), and
-- autovacuum looks at them after a smaller share of change.
--
-- ANALYZE needs the tables' owner: mvfs_analyze runs as its owner (the
-- migrating role) and does nothing else; the daemon's role may call it.

CREATE FUNCTION mvfs_analyze() RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
  AS $$
BEGIN
  ANALYZE memories, memory_items, memory_assets, user_library, workspace_assets, folders, blobs,
          upload_sessions, gallery_items, idempotency_keys;
END
$$;

DO $$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['memories', 'memory_items', 'memory_assets', 'user_library', 'workspace_assets',
                           'folders', 'blobs', 'upload_sessions'] LOOP
    EXECUTE format('ALTER TABLE %I SET (autovacuum_analyze_scale_factor = 0.02,'
                   ' autovacuum_analyze_threshold = 200)', t);
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT EXECUTE ON FUNCTION mvfs_analyze() TO mvault_app';
  END IF;
END
$$;
