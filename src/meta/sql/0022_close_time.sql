-- A close-time record is made after the close returned (fs_record.c), a
-- moment or, with the database away, much later: the times it sets (the
-- file's ctime, its folder's mtime and ctime) are those of the close, which
-- the record's transaction names in mvault.at_ns (ns since the epoch, in
-- microseconds like the clock).  Without it, the database's clock.
CREATE OR REPLACE FUNCTION mvault_ns() RETURNS bigint
  LANGUAGE sql VOLATILE
  AS $$SELECT coalesce(nullif(current_setting('mvault.at_ns', true), '')::bigint,
                       (extract(epoch FROM clock_timestamp()) * 1000000)::bigint * 1000)$$;
