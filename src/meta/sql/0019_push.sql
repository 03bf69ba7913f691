-- 0019: every committed change of a user's namespace is announced, in the
-- changing transaction, on a channel only that user's sessions can name
-- (issue 14, push invalidation; docs/DECISIONS.md, "Changes pushed to
-- other mounts").
--
-- Statement-level AFTER triggers with transition tables on the tables that
-- make up what a mount shows turn the rows a statement changed into tokens
-- -- a kind letter and an inode number, never a name or a hash -- and send
-- them with pg_notify, grouped by user, one notification per statement and
-- user (more only past NOTIFY's 8000-byte payload).  A statement that
-- touches more than mvault_push_max() inodes sends '*' (everything may have
-- changed) instead of thousands of tokens.  NOTIFY is delivered at commit
-- and dropped at rollback: the announcement and the change are one.
--
--   n<ino>  a name of inode <ino> appeared, went or changed (create, rename,
--           move, unlink, tombstone, restore, rmdir; the inode may be gone)
--   a<ino>  the attributes or content of <ino> changed (a new version, a
--           setattr, a link into a gallery, a folder whose entries changed)
--   *       anything may have changed
--
-- NOTIFY is not under row-level security and any role may LISTEN on any
-- channel, so the channel's name is the secret: 'mvfs_' and 128 random
-- bits, one per user, in mvault_push_channels, whose rows each user's
-- session sees only its own of.

CREATE TABLE mvault_push_channels (
  user_id    uuid        PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
  channel    text        NOT NULL UNIQUE
                         DEFAULT 'mvfs_' || replace(gen_random_uuid()::text, '-', '')
                                  || substr(replace(gen_random_uuid()::text, '-', ''), 1, 8),
  created_at timestamptz NOT NULL DEFAULT now()
);
-- Enabled, not forced: the owner's definer functions below read every row;
-- a user's session reads its own.  No role but the owner writes it.
ALTER TABLE mvault_push_channels ENABLE ROW LEVEL SECURITY;
CREATE POLICY mvault_push_channels_self ON mvault_push_channels FOR SELECT
  USING (user_id = (SELECT mvault_uid()));
GRANT SELECT ON mvault_push_channels TO mvault_app;

-- The channel of the user this session acts for, made on first use; NULL
-- for a session that acts for nobody.
CREATE FUNCTION mvault_push_channel() RETURNS text
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
  AS $$
DECLARE
  u uuid := mvault_uid();
  ch text;
BEGIN
  IF u IS NULL THEN
    RETURN NULL;
  END IF;
  INSERT INTO mvault_push_channels (user_id) VALUES (u) ON CONFLICT (user_id) DO NOTHING;
  SELECT channel INTO ch FROM mvault_push_channels WHERE user_id = u;
  PERFORM mvault_push_arm();	-- defined below
  RETURN ch;
END
$$;
REVOKE EXECUTE ON FUNCTION mvault_push_channel() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION mvault_push_channel() TO mvault_app, mvault_admin;

-- Past this many inodes in one statement, '*' is sent instead of tokens.
CREATE FUNCTION mvault_push_max() RETURNS integer
  LANGUAGE sql IMMUTABLE AS 'SELECT 1000';

-- Sends ITEMS (tokens) on P_USER's channel, in payloads under NOTIFY's
-- 8000 bytes.  Only for the user the session acts for, or from a trusted
-- session (a worker, the owner side, the cross-user job steps): a user's
-- role cannot make another user's mounts invalidate.  A user no mount has
-- asked a channel for is told nothing.
CREATE FUNCTION mvault_push_out(p_user uuid, p_items text[]) RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
  AS $$
DECLARE
  ch text;
  buf text := '';
  it text;
BEGIN
  IF p_user IS NULL OR p_items IS NULL OR cardinality(p_items) = 0 THEN
    RETURN;
  END IF;
  IF p_user IS DISTINCT FROM mvault_uid() AND NOT mvault_trusted() THEN
    RETURN;
  END IF;
  SELECT channel INTO ch FROM mvault_push_channels WHERE user_id = p_user;
  IF ch IS NULL THEN
    RETURN;
  END IF;
  IF cardinality(p_items) > mvault_push_max() THEN
    PERFORM pg_notify(ch, '*');
    RETURN;
  END IF;
  FOREACH it IN ARRAY p_items LOOP
    IF length(buf) + length(it) + 1 > 7900 THEN
      PERFORM pg_notify(ch, buf);
      buf := '';
    END IF;
    buf := CASE WHEN buf = '' THEN it ELSE buf || ' ' || it END;
  END LOOP;
  IF buf <> '' THEN
    PERFORM pg_notify(ch, buf);
  END IF;
END
$$;
-- Every role that changes these tables fires the triggers (the web
-- application's too): a missing right must not fail its change.  The check
-- inside keeps it to the caller's own user.
GRANT EXECUTE ON FUNCTION mvault_push_out(uuid, text[]) TO PUBLIC;

-- Whether anyone listens for the user this session acts for (for a
-- session acting for nobody: for anyone).  Every trigger below asks it
-- first: where no mount listens -- the embedded default, which has no
-- other client and does not listen -- a change costs this one lookup, not
-- the transition tables' queries and mvault_push_out (about 0.4 ms of a
-- small file's create, close and upload record).  A definer function: the
-- worker's and the job functions' roles have no right on the table.
CREATE FUNCTION mvault_push_wanted() RETURNS boolean
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public
  AS $$
DECLARE
  u uuid := mvault_uid();
BEGIN
  IF u IS NULL THEN
    RETURN EXISTS (SELECT 1 FROM mvault_push_channels);
  END IF;
  RETURN EXISTS (SELECT 1 FROM mvault_push_channels WHERE user_id = u);
END
$$;
GRANT EXECUTE ON FUNCTION mvault_push_wanted() TO PUBLIC;

-- --- the triggers ----------------------------------------------------------
-- One function per table (its columns differ), for INSERT, UPDATE and
-- DELETE each (PostgreSQL allows transition tables on one event only).
-- They read only ids and compare rows; no name leaves the statement.

-- A file's original: a new version's upload finishing (the file shows on
-- other mounts from then on), its content, its lifecycle (into the trash
-- or out of it: its name leaves or joins its folder).
CREATE FUNCTION mvault_push_assets() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
DECLARE
  r record;
BEGIN
  IF NOT mvault_push_wanted() THEN
    RETURN NULL;
  END IF;
  FOR r IN SELECT i.user_id, array_agg(DISTINCT CASE
                    WHEN n.lifecycle_status IS DISTINCT FROM o.lifecycle_status THEN 'n' ELSE 'a' END
                    || i.ino) AS t
             FROM pushed_new n JOIN pushed_old o ON o.id = n.id
             JOIN memory_items i ON i.id = n.memory_item_id
            WHERE n.variant_of_asset_id IS NULL
              AND (n.upload_status, n.lifecycle_status, n.content_hash, n.bytes, n.version_ino)
                  IS DISTINCT FROM (o.upload_status, o.lifecycle_status, o.content_hash, o.bytes, o.version_ino)
            GROUP BY i.user_id LOOP
    PERFORM mvault_push_out(r.user_id, r.t);
  END LOOP;
  RETURN NULL;
END
$$;

-- A file arrives in, leaves or moves between folders (library/, workspace/,
-- a collection).
CREATE FUNCTION mvault_push_places() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
DECLARE
  r record;
BEGIN
  IF NOT mvault_push_wanted() THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    FOR r IN SELECT i.user_id, array_agg(DISTINCT 'n' || i.ino) AS t
               FROM pushed_new n JOIN memory_items i ON i.memory_id = n.memory_id GROUP BY i.user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  ELSIF TG_OP = 'DELETE' THEN
    FOR r IN SELECT i.user_id, array_agg(DISTINCT 'n' || i.ino) AS t
               FROM pushed_old o JOIN memory_items i ON i.memory_id = o.memory_id GROUP BY i.user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  ELSIF TG_TABLE_NAME = 'user_library' THEN
    FOR r IN SELECT i.user_id, array_agg(DISTINCT 'n' || i.ino) AS t
               FROM pushed_new n JOIN pushed_old o ON o.id = n.id
               JOIN memory_items i ON i.memory_id = n.memory_id
              WHERE (n.folder_id, n.collection_id) IS DISTINCT FROM (o.folder_id, o.collection_id)
              GROUP BY i.user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  ELSE
    FOR r IN SELECT i.user_id, array_agg(DISTINCT 'n' || i.ino) AS t
               FROM pushed_new n JOIN pushed_old o ON o.id = n.id
               JOIN memory_items i ON i.memory_id = n.memory_id
              WHERE n.folder_id IS DISTINCT FROM o.folder_id
              GROUP BY i.user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  END IF;
  RETURN NULL;
END
$$;

-- The rows that carry an inode of their own: files (memory_items: a new,
-- removed or renamed file, both numbers when a save-merge moves a file's
-- number, else its attributes or version), folders of the tree,
-- collections and galleries (a name -- parent_id is NULL where a table has
-- none -- or the attributes: a folder's times move with every entry made,
-- removed or renamed in it, 0006's triggers).
CREATE FUNCTION mvault_push_named() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
DECLARE
  r record;
BEGIN
  IF NOT mvault_push_wanted() THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    FOR r IN SELECT user_id, array_agg(DISTINCT 'n' || ino) AS t FROM pushed_new GROUP BY user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  ELSIF TG_OP = 'DELETE' THEN
    FOR r IN SELECT user_id, array_agg(DISTINCT 'n' || ino) AS t FROM pushed_old GROUP BY user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  ELSIF TG_TABLE_NAME = 'memory_items' THEN
    FOR r IN SELECT u, array_agg(DISTINCT tok) AS t FROM (
               SELECT n.user_id AS u, unnest(CASE
                        WHEN n.ino <> o.ino THEN ARRAY['n' || o.ino, 'n' || n.ino]
                        WHEN n.display_name IS DISTINCT FROM o.display_name THEN ARRAY['n' || n.ino]
                        ELSE ARRAY['a' || n.ino] END) AS tok
                 FROM pushed_new n JOIN pushed_old o ON o.id = n.id) x
             GROUP BY u LOOP
      PERFORM mvault_push_out(r.u, r.t);
    END LOOP;
  ELSIF TG_TABLE_NAME = 'folders' THEN
    FOR r IN SELECT n.user_id, array_agg(DISTINCT CASE
                      WHEN (n.name, n.parent_id) IS DISTINCT FROM (o.name, o.parent_id) THEN 'n' ELSE 'a' END
                      || n.ino) AS t
               FROM pushed_new n JOIN pushed_old o ON o.id = n.id GROUP BY n.user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  ELSE
    FOR r IN SELECT n.user_id, array_agg(DISTINCT CASE
                      WHEN n.name IS DISTINCT FROM o.name THEN 'n' ELSE 'a' END || n.ino) AS t
               FROM pushed_new n JOIN pushed_old o ON o.id = n.id GROUP BY n.user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  END IF;
  RETURN NULL;
END
$$;

-- A memory into or out of a gallery: the gallery's listing, the file's
-- link count.
CREATE FUNCTION mvault_push_gallery_items() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
DECLARE
  r record;
BEGIN
  IF NOT mvault_push_wanted() THEN
    RETURN NULL;
  END IF;
  FOR r IN SELECT x.user_id, array_agg(DISTINCT tok) AS t FROM (
             SELECT c.user_id, 'a' || g.ino AS tok FROM pushed c JOIN galleries g ON g.id = c.gallery_id
             UNION ALL
             SELECT c.user_id, 'a' || i.ino FROM pushed c JOIN memory_items i ON i.memory_id = c.memory_id) x
           GROUP BY x.user_id LOOP
    PERFORM mvault_push_out(r.user_id, r.t);
  END LOOP;
  RETURN NULL;
END
$$;

-- Plain files: their own inode, and the folder (of the tree, a collection
-- or a gallery) they are in.
CREATE FUNCTION mvault_push_plain() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
DECLARE
  r record;
BEGIN
  IF NOT mvault_push_wanted() THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'INSERT' THEN
    FOR r IN SELECT user_id, array_agg(DISTINCT tok) AS t FROM (
               SELECT user_id, 'n' || ino AS tok FROM pushed_new
               UNION ALL SELECT user_id, 'a' || dir_ino FROM pushed_new) x GROUP BY user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  ELSIF TG_OP = 'DELETE' THEN
    FOR r IN SELECT user_id, array_agg(DISTINCT tok) AS t FROM (
               SELECT user_id, 'n' || ino AS tok FROM pushed_old
               UNION ALL SELECT user_id, 'a' || dir_ino FROM pushed_old) x GROUP BY user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  ELSE
    FOR r IN SELECT user_id, array_agg(DISTINCT tok) AS t FROM (
               SELECT n.user_id, unnest(CASE
                        WHEN (n.name, n.dir_ino) IS DISTINCT FROM (o.name, o.dir_ino)
                        THEN ARRAY['n' || n.ino, 'a' || o.dir_ino, 'a' || n.dir_ino]
                        ELSE ARRAY['a' || n.ino] END) AS tok
                 FROM pushed_new n JOIN pushed_old o ON o.id = n.id) x GROUP BY user_id LOOP
      PERFORM mvault_push_out(r.user_id, r.t);
    END LOOP;
  END IF;
  RETURN NULL;
END
$$;

-- Makes the triggers below, once: when the first mount asks for a channel
-- (mvault_push_channel).  A database where no mount ever listened -- the
-- embedded default, which no other client can reach, does not -- has none:
-- even a trigger that returns at once costs its transition tables and a
-- call, some 0.4 ms of a small file's create, close and upload record
-- (measured against no triggers, 500-file runs taken in turns).  Made by
-- the owner (a definer function); two first mounts at once both try, and
-- the one that finds them made already lets it be.
CREATE FUNCTION mvault_push_arm() RETURNS void
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
  AS $$
DECLARE
  t record;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'memory_items_push_i'
                AND tgrelid = 'public.memory_items'::regclass) THEN
    RETURN;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('mvault_push_arm', 0));
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'memory_items_push_i'
                AND tgrelid = 'public.memory_items'::regclass) THEN
    RETURN;
  END IF;
  FOR t IN SELECT * FROM (VALUES
             ('memory_items', 'mvault_push_named', 'IUD'),
             ('memory_assets', 'mvault_push_assets', 'U'),
             ('user_library', 'mvault_push_places', 'IUD'),
             ('workspace_assets', 'mvault_push_places', 'IUD'),
             ('folders', 'mvault_push_named', 'IUD'),
             ('user_collections', 'mvault_push_named', 'IUD'),
             ('galleries', 'mvault_push_named', 'IUD'),
             ('gallery_items', 'mvault_push_gallery_items', 'ID'),
             ('plain_files', 'mvault_push_plain', 'IUD')) AS v(tab, fn, ops)
  LOOP
    IF t.fn = 'mvault_push_gallery_items' THEN
      EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS pushed'
                     ' FOR EACH STATEMENT EXECUTE FUNCTION %I()', t.tab || '_push_i', t.tab, t.fn);
      EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS pushed'
                     ' FOR EACH STATEMENT EXECUTE FUNCTION %I()', t.tab || '_push_d', t.tab, t.fn);
      CONTINUE;
    END IF;
    IF strpos(t.ops, 'I') > 0 THEN
      EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS pushed_new'
                     ' FOR EACH STATEMENT EXECUTE FUNCTION %I()', t.tab || '_push_i', t.tab, t.fn);
    END IF;
    IF strpos(t.ops, 'U') > 0 THEN
      EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS pushed_old'
                     ' NEW TABLE AS pushed_new FOR EACH STATEMENT EXECUTE FUNCTION %I()',
                     t.tab || '_push_u', t.tab, t.fn);
    END IF;
    IF strpos(t.ops, 'D') > 0 THEN
      EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS pushed_old'
                     ' FOR EACH STATEMENT EXECUTE FUNCTION %I()', t.tab || '_push_d', t.tab, t.fn);
    END IF;
  END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION mvault_push_arm() FROM PUBLIC;
