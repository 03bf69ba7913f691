-- 0021: two plans that a database of many users got wrong (issue 10;
-- docs/SCALE.md, "Findings", 1 and 2).
--
-- 1. A listing page is planned without a full sort.
--
-- A page of a folder walks its membership index in (memory_id, ino) order
-- from a cursor and stops after a page.  In a database of many users the
-- planner expected one row of the folder: the folder is found by a
-- sub-select on its inode (so the planner assumes an average folder), and
-- the user is filtered twice (the statement's user_id = $1 and the
-- policy's), which it multiplies as if independent.  With one row expected
-- it read and sorted the whole folder for every page: 22,000 files, 86
-- pages, 25 s.  With enable_sort off the only ordered plan left is the
-- index walk with an Incremental Sort by inode within a memory, which stops
-- at the page's end.
--
-- A function's SET clause holds while the query it runs is planned, so the
-- page is run by this function, in the same one statement.  The daemon
-- still writes the page's SQL (meta_files.c, meta_list: one text per kind
-- of place) and passes it with its parameters: $1 user, $2 the inode of
-- the folder, collection or gallery, $3 and $4 the cursor (memory id,
-- inode), $5 the page's size.  EXECUTE plans it for these values at every
-- call, as the daemon's META_PLAN_PER_CALL did.  The trash's pages do not
-- come here: its files are a few among all of the user's, with no index
-- in the listing's order, and walking the user's files in that order to
-- find them took 20 s a page where finding then sorting them takes 0.3 s.
--
-- SECURITY INVOKER (the caller's rights and policies) and STABLE: the query
-- runs read-only, so PostgreSQL refuses any change in it, and it is only
-- ever a read (meta_pool.c retries it after a lost connection).

CREATE FUNCTION mvault_list_page(p_sql text, p_user uuid, p_ino bigint, p_after_memory uuid,
                                 p_after_ino bigint, p_max integer)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
SET enable_sort = off
AS $$
BEGIN
  RETURN QUERY EXECUTE p_sql USING p_user, p_ino, p_after_memory, p_after_ino, p_max;
END
$$;

-- 2. The sweep of a mount is planned for its user at every call.
--
-- mvault_jobs_sweep (0020) finds due work with (uid IS NULL OR m.user_id =
-- uid): uid is the mount's user, or NULL for `mvaultfs worker`.  PL/pgSQL
-- keeps each statement's plan for the session, and after five calls
-- PostgreSQL may keep a generic plan, which cannot decide the OR.  At 1/100
-- scale it did so for the heavy user (50,000 memories): 165-290 ms a
-- sweep, then 490-600 ms from the sixth on, every jobs_interval (5 s).
-- Planned for its user at every call (a few ms of planning), it stays at
-- the first.  A later CREATE OR REPLACE of the function must say this SET
-- again.

ALTER FUNCTION mvault_jobs_sweep(integer) SET plan_cache_mode = force_custom_plan;
