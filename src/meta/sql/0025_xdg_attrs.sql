-- 0025: the web application's tags, favourite flag and title as the
-- extended attributes desktop tools read and write (issue 15; docs/
-- DECISIONS.md, "Tags, favourites and titles as desktop attributes").
--
--   user.xdg.tags      user_library.tags, joined with ',' (KDE's
--                      KFileMetaData: join(','), split(',') dropping empty
--                      parts); a write trims each tag and drops empty and
--                      repeated ones
--   user.xdg.comment   user_library.custom_title
--   user.baloo.rating  user_library.is_favorite: a rating 1-10 (Dolphin's
--                      stars x 2) makes the file a favourite, 0 or a removal
--                      unmakes it; the number itself is kept in xdg_rating,
--                      so a rating read back is the one written; a favourite
--                      made by the web application reads as 10
--
-- These names mean this only for a file with a user_library row (library/,
-- its collections and galleries, and its versions' memory while in
-- .trash/).  Elsewhere (workspace/ files, plain files, collections and
-- galleries themselves) they are ordinary user.* attributes kept in
-- inode_xattrs as before, and a workspace file's are adopted into its new
-- library row when it is promoted.

ALTER TABLE user_library ADD COLUMN xdg_rating smallint
  CONSTRAINT user_library_xdg_rating_check CHECK (xdg_rating BETWEEN 1 AND 10);

-- The stars go with the flag: a file the web application unfavourites
-- forgets them, so one it favourites again reads as 10.
CREATE FUNCTION mvault_xdg_rating_follows() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  NEW.xdg_rating := NULL;
  RETURN NEW;
END
$$;
CREATE TRIGGER user_library_xdg_rating BEFORE INSERT OR UPDATE ON user_library
  FOR EACH ROW WHEN (NEW.xdg_rating IS NOT NULL AND NEW.is_favorite IS NOT TRUE)
  EXECUTE FUNCTION mvault_xdg_rating_follows();

-- The names, in listing order.
CREATE FUNCTION mvfs_xdg_names() RETURNS text[]
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT ARRAY['user.baloo.rating', 'user.xdg.comment', 'user.xdg.tags'] $$;

-- What attribute P_NAME of library row L reads as; NULL: not set.
CREATE FUNCTION mvfs_xdg_value(l user_library, p_name text) RETURNS text
  LANGUAGE sql IMMUTABLE
  AS $$
  SELECT CASE p_name
           WHEN 'user.xdg.tags' THEN nullif(array_to_string(l.tags, ','), '')
           WHEN 'user.xdg.comment' THEN nullif(l.custom_title, '')
           WHEN 'user.baloo.rating' THEN CASE WHEN l.is_favorite THEN coalesce(l.xdg_rating, 10)::text END
         END
$$;

-- Attribute P_NAME of inode P_INO: from its library row when it has one,
-- else from inode_xattrs.  NULL: not set.  One statement for the daemon.
CREATE FUNCTION mvfs_xdg_get(p_user uuid, p_ino bigint, p_name text) RETURNS bytea
  LANGUAGE sql STABLE
  AS $$
  SELECT CASE WHEN l.id IS NOT NULL THEN convert_to(mvfs_xdg_value(l, p_name), 'UTF8')
              ELSE (SELECT x.value FROM inode_xattrs x
                     WHERE x.user_id = p_user AND x.ino = p_ino AND x.name = p_name) END
    FROM (SELECT 1) one
    LEFT JOIN memory_items i ON i.user_id = p_user AND i.ino = p_ino
    LEFT JOIN user_library l ON l.memory_id = i.memory_id
$$;

-- Every user.* name set on inode P_INO, sorted: inode_xattrs' rows (but
-- for a library file the desktop names, which its row answers) and the
-- desktop names its library row has a value for.
CREATE FUNCTION mvfs_xattr_names(p_user uuid, p_ino bigint) RETURNS SETOF text
  LANGUAGE sql STABLE
  AS $$
  WITH lib AS (SELECT l FROM memory_items i JOIN user_library l ON l.memory_id = i.memory_id
                WHERE i.user_id = p_user AND i.ino = p_ino)
  SELECT name FROM (
    SELECT x.name FROM inode_xattrs x
     WHERE x.user_id = p_user AND x.ino = p_ino
       AND NOT (x.name = ANY (mvfs_xdg_names()) AND EXISTS (SELECT 1 FROM lib))
    UNION ALL
    SELECT n FROM lib, unnest(mvfs_xdg_names()) n WHERE mvfs_xdg_value(lib.l, n) IS NOT NULL) s
  ORDER BY name
$$;

-- Sets (P_VALUE; NULL: removes) desktop attribute P_NAME of library file
-- P_INO, as the daemon checked it.  P_MODE 'create', 'replace' or 'set'
-- (XATTR_CREATE, XATTR_REPLACE, neither).  Returns 'ok', 'exists'
-- (create, and it is set), 'nodata' (replace or remove, and it is not) or
-- 'generic' (no library row: the caller keeps it in inode_xattrs).  The
-- checks are repeated here for callers other than the daemon: MV022
-- (EINVAL) for a rating that is no number, MV034 (ERANGE) for one outside
-- 0-10, MV007 (E2BIG) for a value past the limits.
CREATE FUNCTION mvfs_xdg_set(p_user uuid, p_ino bigint, p_name text, p_value text, p_mode text)
  RETURNS text
  LANGUAGE plpgsql
  AS $$
DECLARE
  l user_library;
  had boolean;
  v_tags text[];
  rating integer;
BEGIN
  SELECT lib.* INTO l FROM memory_items i JOIN user_library lib ON lib.memory_id = i.memory_id
   WHERE i.user_id = p_user AND i.ino = p_ino FOR UPDATE OF lib;
  IF NOT FOUND THEN
    RETURN 'generic';
  END IF;
  had := mvfs_xdg_value(l, p_name) IS NOT NULL;
  IF p_mode = 'create' AND had THEN
    RETURN 'exists';
  ELSIF (p_mode = 'replace' OR p_value IS NULL) AND NOT had THEN
    RETURN 'nodata';
  END IF;
  IF p_name = 'user.xdg.tags' THEN
    IF octet_length(p_value) > 8192 THEN
      RAISE EXCEPTION 'tags over 8192 bytes' USING ERRCODE = 'MV007';
    END IF;
    SELECT coalesce(array_agg(t ORDER BY o), '{}') INTO v_tags
      FROM (SELECT btrim(t) AS t, min(o) AS o
              FROM unnest(string_to_array(p_value, ',')) WITH ORDINALITY AS u(t, o)
             WHERE btrim(t) <> '' GROUP BY btrim(t)) s;
    IF EXISTS (SELECT 1 FROM unnest(v_tags) t WHERE octet_length(t) > 255) THEN
      RAISE EXCEPTION 'a tag over 255 bytes' USING ERRCODE = 'MV007';
    END IF;
    UPDATE user_library SET tags = v_tags WHERE id = l.id;
  ELSIF p_name = 'user.xdg.comment' THEN
    IF octet_length(p_value) > 4096 THEN
      RAISE EXCEPTION 'a title over 4096 bytes' USING ERRCODE = 'MV007';
    END IF;
    UPDATE user_library SET custom_title = nullif(p_value, '') WHERE id = l.id;
  ELSIF p_name = 'user.baloo.rating' THEN
    IF p_value IS NOT NULL AND p_value !~ '^\s*[+-]?[0-9]{1,9}\s*$' THEN
      RAISE EXCEPTION 'a rating is a number 0-10' USING ERRCODE = 'MV022';
    END IF;
    rating := coalesce(p_value::integer, 0);
    IF rating NOT BETWEEN 0 AND 10 THEN
      RAISE EXCEPTION 'a rating is 0-10' USING ERRCODE = 'MV034';
    END IF;
    UPDATE user_library SET is_favorite = rating > 0, xdg_rating = nullif(rating, 0) WHERE id = l.id;
  ELSE
    RAISE EXCEPTION 'no desktop attribute %', p_name USING ERRCODE = 'MV022';
  END IF;
  RETURN 'ok';
END
$$;

-- Moves the desktop attributes a file P_INO has in inode_xattrs into its
-- library row where that row has no value of its own (the web
-- application's wins), and drops the rows it moved or that lost.  A value
-- the mapping refuses (not UTF-8, a rating that is no 0-10, too long)
-- stays in inode_xattrs, unseen while the file is in library/.  Returns
-- how many rows stayed.
CREATE FUNCTION mvfs_xdg_adopt(p_user uuid, p_ino bigint) RETURNS integer
  LANGUAGE plpgsql
  AS $$
DECLARE
  x record;
  kept integer := 0;
BEGIN
  FOR x IN SELECT name, value FROM inode_xattrs
            WHERE user_id = p_user AND ino = p_ino AND name = ANY (mvfs_xdg_names()) LOOP
    BEGIN
      IF mvfs_xdg_set(p_user, p_ino, x.name, convert_from(x.value, 'UTF8'), 'create') = 'generic' THEN
        RETURN 0;
      END IF;
      DELETE FROM inode_xattrs WHERE user_id = p_user AND ino = p_ino AND name = x.name;
    EXCEPTION WHEN character_not_in_repertoire OR untranslatable_character OR SQLSTATE 'MV007'
                   OR SQLSTATE 'MV022' OR SQLSTATE 'MV034' THEN
      kept := kept + 1;
    END;
  END LOOP;
  RETURN kept;
END
$$;

-- A save's fresh file F (an rsync temp file, an editor's new copy) becomes
-- the new version of file T (mvfs_merge): the desktop attributes F was
-- given win, the ones it lacks stay T's, so a save by a tool that knows
-- nothing of tags keeps the web application's.
CREATE FUNCTION mvfs_xdg_carry(p_from uuid, p_to uuid) RETURNS void
  LANGUAGE sql
  AS $$
  UPDATE user_library t
     SET tags = CASE WHEN cardinality(f.tags) > 0 THEN f.tags ELSE t.tags END,
         custom_title = coalesce(nullif(f.custom_title, ''), t.custom_title),
         is_favorite = CASE WHEN f.is_favorite THEN true ELSE t.is_favorite END,
         xdg_rating = CASE WHEN f.is_favorite THEN f.xdg_rating ELSE t.xdg_rating END
    FROM user_library f
   WHERE f.memory_id = p_from AND t.memory_id = p_to
     AND (cardinality(f.tags) > 0 OR nullif(f.custom_title, '') IS NOT NULL OR f.is_favorite)
$$;

-- mvfs_merge and mvfs_promote (0010's bodies) call them: each changed in
-- one line, rewritten in place as 0023 did.
DO $$
DECLARE
  src text := pg_get_functiondef('mvfs_merge(uuid, uuid, uuid, integer, integer)'::regprocedure);
  was text := src;
BEGIN
  src := replace(src, '  DELETE FROM memories WHERE id = f.mem;',
                 '  PERFORM mvfs_xdg_carry(f.mem, t.mem);' || chr(10) || '  DELETE FROM memories WHERE id = f.mem;');
  IF src = was THEN
    RAISE EXCEPTION 'mvfs_merge is not the one 0010 made';
  END IF;
  EXECUTE src;
  src := pg_get_functiondef('mvfs_promote(uuid, uuid, bigint)'::regprocedure);
  was := src;
  src := replace(src, '  RETURN true;',
                 '  PERFORM mvfs_xdg_adopt(p_user, i.ino) FROM memory_items i WHERE i.memory_id = p_mem;'
                 || chr(10) || '  RETURN true;');
  IF src = was THEN
    RAISE EXCEPTION 'mvfs_promote is not the one 0010 made';
  END IF;
  EXECUTE src;
END
$$;

-- Values people set on library files before this migration, through the
-- generic table: adopted as a promotion adopts them (row-level security set
-- aside for the owner while it does, as 0006 did).
ALTER TABLE inode_xattrs NO FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_items NO FORCE ROW LEVEL SECURITY;
ALTER TABLE user_library NO FORCE ROW LEVEL SECURITY;
DO $$
DECLARE
  kept integer;
BEGIN
  SELECT coalesce(sum(mvfs_xdg_adopt(user_id, ino)), 0) INTO kept
    FROM (SELECT DISTINCT user_id, ino FROM inode_xattrs WHERE name = ANY (mvfs_xdg_names())) x;
  IF kept > 0 THEN
    RAISE NOTICE '% desktop attributes of library files kept in inode_xattrs: not valid for their column',
      kept;
  END IF;
END
$$;
ALTER TABLE inode_xattrs FORCE ROW LEVEL SECURITY;
ALTER TABLE memory_items FORCE ROW LEVEL SECURITY;
ALTER TABLE user_library FORCE ROW LEVEL SECURITY;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_app') THEN
    EXECUTE 'GRANT EXECUTE ON FUNCTION mvfs_xdg_names(), mvfs_xdg_value(user_library, text),'
            ' mvfs_xdg_get(uuid, bigint, text), mvfs_xattr_names(uuid, bigint),'
            ' mvfs_xdg_set(uuid, bigint, text, text, text), mvfs_xdg_adopt(uuid, bigint),'
            ' mvfs_xdg_carry(uuid, uuid) TO mvault_app';
  END IF;
  -- 0018's rule for later columns: a rating names nothing (is_favorite is
  -- readable too)
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'mvault_worker') THEN
    EXECUTE 'GRANT SELECT (xdg_rating) ON user_library TO mvault_worker';
  END IF;
END
$$;
