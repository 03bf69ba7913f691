-- 0026: a version kept "whatever its age" is kept (issue 14).
--
-- mvfs_retire_version judged a replaced version young when it was created
-- after now() - p_min_age.  With p_min_age = 0 (mvfs_stage's "another
-- writer recorded it after this one started: keep it") that is "created
-- after now()", and now() is when the retiring transaction started: a
-- record that waited on the memory's row lock for the other writer's
-- record (started before it, committed after) saw that version as created
-- in its future, so as young, and gave it a grace period already over.
-- The deletion job then removed it: two mounts rewriting one file at once
-- lost the first close's bytes about one time in five
-- (test_concurrent_writes.py).  Now no age is young when P_MIN_AGE is 0.
CREATE OR REPLACE FUNCTION mvfs_retire_version(p_asset uuid, p_ino bigint, p_min_age integer, p_trash_days integer)
  RETURNS void
  LANGUAGE plpgsql
  AS $$
DECLARE
  b uuid;
  found_it boolean;
BEGIN
  UPDATE memory_assets SET lifecycle_status = 'tombstoned',
         tombstoned_at = CASE WHEN p_min_age > 0 AND created_at > now() - make_interval(secs => p_min_age)
                              THEN mvault_now() - make_interval(days => p_trash_days, secs => 1)
                              ELSE mvault_now() END,
         version_ino = coalesce(p_ino, nextval('fs_ino_seq'))
   WHERE id = p_asset AND lifecycle_status = 'active'
   RETURNING blob_id, true INTO b, found_it;
  IF found_it AND b IS NOT NULL THEN
    PERFORM mvfs_release_blob(p_asset, b);
  END IF;
END
$$;
