-- Which of two versions of a file was written last.  Write-back records a
-- version at close and again when its upload lands; when the record at
-- close failed (the database was away), the upload's record must not
-- replace a version written after it.  staged_seq is the journal's order of
-- the close that made the version (NULL: made elsewhere, the oldest).
ALTER TABLE memory_assets ADD COLUMN staged_seq bigint;
