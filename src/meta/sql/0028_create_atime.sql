-- A file made here first whose access time was set before its record was
-- made: rsync sets both times of its temporary file after the close, and
-- the mount puts them into the queued record instead of waiting for it
-- (DECISIONS.md, "A create made here first").  The record sets the access
-- time in the same call and transaction; NULL leaves it unset, as 0023's
-- form (kept for a daemon of the release before) does.
CREATE FUNCTION mvfs_create_staged(p_user uuid, p_ino bigint, p_home bigint, p_name text, p_mode integer,
                                   p_sha text, p_size bigint, p_mime text, p_type text, p_backend text,
                                   p_key text, p_mtime_sec bigint, p_mtime_nsec integer, p_seq bigint,
                                   p_min_age integer, p_trash_days integer, p_at text, p_atime_ns bigint)
  RETURNS void
  LANGUAGE plpgsql
  AS $$
BEGIN
  PERFORM mvfs_create_staged(p_user, p_ino, p_home, p_name, p_mode, p_sha, p_size, p_mime, p_type, p_backend,
                             p_key, p_mtime_sec, p_mtime_nsec, p_seq, p_min_age, p_trash_days, p_at);
  IF p_atime_ns IS NOT NULL THEN
    UPDATE memory_items SET atime_ns = p_atime_ns WHERE user_id = p_user AND ino = p_ino;
  END IF;
END
$$;
