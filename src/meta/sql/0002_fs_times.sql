-- Nanoseconds of a file's mtime: timestamptz keeps microseconds, and rsync
-- compares modification times to the nanosecond, so a file copied with
-- rsync -a must read back exactly the time it was given.
ALTER TABLE memory_items
  ADD COLUMN mtime_nsec integer NOT NULL DEFAULT 0
  CONSTRAINT memory_items_mtime_nsec_check CHECK (mtime_nsec >= 0 AND mtime_nsec < 1000000000);
