/*
 * be_local.c - the local-folder backend: each object is the file ROOT/KEY.
 *
 * Every call works relative to one directory fd on ROOT (openat, fstatat,
 * ...), so the store keeps working if ROOT is renamed while mounted, and no
 * path is ever built by string concatenation outside the store.
 *
 * DESIGN
 * put never writes the real name directly.  It writes a temp file, named
 * ".tmp.<basename>.<pid>.<tid>.<counter>", in the object's own directory (so
 * the rename stays inside one filesystem and is atomic), fsyncs it, renames
 * it over the real name and fsyncs the directory.  Readers therefore see the
 * whole object or nothing, concurrent puts of one key each rename a complete
 * copy of the same bytes (last one wins, all are equal), and a crash leaves
 * at most a stray temp file, which list() never shows.  Newly made
 * directories are fsync'd into their parents so the object stays reachable
 * after a crash.  The only shared mutable state is the atomic temp counter.
 *
 * When the bytes to put are a file on the store's own file system (the
 * write-back cache's sealed staging files, in the embedded default), put
 * links that file in under the real name instead: its data synced first
 * (fdatasync, nothing to write for sealed content), one link, one fsync of
 * the directory, no copy.  The link appears whole, as a rename does.
 */
#include "backend/be_local.h"
#include "util/log.h"

#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define KEY_MAX_LEN	1024
#define COMPONENT_MAX	200		/* leaves room for the temp-name decoration */
#define TMP_PREFIX	".tmp."
#define TMP_PREFIX_LEN	5
#define COPY_CHUNK	(1 << 20)

struct local_backend {
	struct backend base;
	char *root;
	int rootfd;
	atomic_ulong tmp_counter;
};

static inline struct local_backend *to_local(struct backend *b)
{
	return (struct local_backend *)b;
}

/* Logs one line about a failed operation and returns RC.  A missing key is
 * an ordinary answer, not a fault, so it is only a debug line.  DETAIL, when
 * not NULL, says which step failed. */
static int fail(const char *op, const char *key, const char *detail, int rc)
{
	if (rc == -ENOENT)
		log_debug("local store: cannot %s '%s': %s", op, key, strerror(-rc));
	else if (detail)
		log_error("local store: cannot %s '%s': %s: %s", op, key, detail, strerror(-rc));
	else
		log_error("local store: cannot %s '%s': %s", op, key, strerror(-rc));
	return rc;
}

/* A rejected key may hold anything (newlines, megabytes): log a short,
 * printable rendering of it instead. */
static int fail_invalid(const char *op, const char *key)
{
	char shown[68];
	size_t i;

	for (i = 0; key && key[i] && i < 64; i++)
		shown[i] = key[i] >= 0x20 && key[i] < 0x7f ? key[i] : '?';
	shown[i] = '\0';
	if (key && key[i])
		memcpy(shown + i, "...", 4);
	return fail(op, key ? shown : "(null)", "invalid key", -EINVAL);
}

static int key_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* The key rules of be_local.h: 1 when KEY may name an object. */
static int key_valid(const char *key)
{
	size_t len, i, start = 0;

	if (!key)
		return 0;
	len = strnlen(key, KEY_MAX_LEN + 1);
	if (len == 0 || len > KEY_MAX_LEN)
		return 0;
	for (i = 0; i <= len; i++) {
		const char *comp = key + start;
		size_t n = i - start;

		if (i < len && key[i] != '/') {
			if (!key_char_ok(key[i]))
				return 0;
			continue;
		}
		if (n == 0 || n > COMPONENT_MAX)
			return 0;
		if ((n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.'))
			return 0;
		if (n >= TMP_PREFIX_LEN && memcmp(comp, TMP_PREFIX, TMP_PREFIX_LEN) == 0)
			return 0;
		start = i + 1;
	}
	return 1;
}

/* fsync the directory PATH (relative to ROOTFD; "" is ROOTFD itself). */
static int fsync_dir(int rootfd, const char *path)
{
	int fd, rc = 0;

	if (!*path)
		return fsync(rootfd) < 0 ? -errno : 0;
	fd = openat(rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Makes every directory in DIR ("a/b/c", relative to ROOTFD) that is
 * missing, fsyncing each new one into its parent. */
static int make_dirs(int rootfd, const char *dir)
{
	char path[KEY_MAX_LEN + 1];
	size_t len = strlen(dir), i;
	int rc;

	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		char *slash;

		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdirat(rootfd, path, 0700) == 0) {
			slash = strrchr(path, '/');
			if (slash) {
				*slash = '\0';
				rc = fsync_dir(rootfd, path);
				*slash = '/';
			} else {
				rc = fsync_dir(rootfd, "");
			}
			if (rc)
				return rc;
		} else if (errno != EEXIST) {
			return -errno;
		}
		if (i < len)
			path[i] = '/';
	}
	return 0;
}

/* Opens the directory that holds KEY (making it when CREATE) and points
 * *BASE at the key's last component.  Returns an fd, which may be ROOTFD
 * itself (do not close that one), or -errno. */
static int open_parent(struct local_backend *l, const char *key, const char **base, int create)
{
	char dir[KEY_MAX_LEN + 1];
	const char *slash = strrchr(key, '/');
	size_t n;
	int fd, rc;

	if (!slash) {
		*base = key;
		return l->rootfd;
	}
	*base = slash + 1;
	n = (size_t)(slash - key);
	memcpy(dir, key, n);
	dir[n] = '\0';
	fd = openat(l->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 || errno != ENOENT || !create)
		return fd >= 0 ? fd : -errno;
	rc = make_dirs(l->rootfd, dir);
	if (rc)
		return rc;
	fd = openat(l->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd >= 0 ? fd : -errno;
}

static int write_all(int fd, const char *buf, size_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = pwrite(fd, buf, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Copies SIZE bytes from offset 0 of SRC to DST: copy_file_range while the
 * kernel can (no copy through user space), then pread/pwrite in COPY_CHUNK
 * pieces.  On failure *WHAT says which side failed. */
static int copy_in(int dst, int src, uint64_t size, const char **what)
{
	uint64_t done = 0;
	char *buf = NULL;
	int use_cfr = 1, rc = 0;

	while (done < size) {
		size_t want = size - done > COPY_CHUNK ? COPY_CHUNK : (size_t)(size - done);
		ssize_t n;

		if (use_cfr) {
			loff_t in = (loff_t)done, out = (loff_t)done;

			n = copy_file_range(src, &in, dst, &out, want, 0);
			if (n > 0) {
				done += (uint64_t)n;
				continue;
			}
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == ENOSPC || errno == EDQUOT || errno == EIO)) {
				*what = "writing";
				rc = -errno;
				break;
			}
			/* Not supported here (EXDEV, EINVAL, EOPNOTSUPP, ...), or a
			 * source we cannot tell apart yet (EBADF, early EOF): the
			 * plain path below gives the precise answer. */
			use_cfr = 0;
			continue;
		}
		if (!buf && !(buf = malloc(COPY_CHUNK))) {
			*what = "allocating a buffer";
			rc = -ENOMEM;
			break;
		}
		n = pread(src, buf, want, (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*what = "reading the source";
			rc = -errno;
			break;
		}
		if (n == 0) {
			*what = "the source ended early";
			rc = -EIO;
			break;
		}
		rc = write_all(dst, buf, (size_t)n, done);
		if (rc) {
			*what = "writing";
			break;
		}
		done += (uint64_t)n;
	}
	free(buf);
	return rc;
}

/* Puts the bytes of FD in as BASE (in DFD) without copying them: a hard
 * link of FD's file, when it is on the store's file system.  Content is
 * immutable once sealed, so the object and the file it came from may share
 * one inode.  0 when done, -errno on failure, 1 when FD cannot be linked
 * (another file system, an unnamed file that may not be linked, ...): copy. */
static int link_in(int dfd, const char *base, int fd, uint64_t size)
{
	struct stat st;
	char proc[64];
	int fl = fcntl(fd, F_GETFL);

	/* only a readable regular file of exactly SIZE bytes: anything else
	 * gets the copy's checks and answers */
	if (fl < 0 || (fl & O_ACCMODE) == O_WRONLY || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != size)
		return 1;
	/* its data durable first (a no-op for sealed staging files, which are) */
	if (fdatasync(fd) < 0)
		return 1;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dfd, base, AT_SYMLINK_FOLLOW) < 0) {
		if (errno == EEXIST)
			return 1;	/* a partial object? copying replaces it */
		return errno == ENOSPC || errno == EDQUOT || errno == EIO ? -errno : 1;
	}
	return fsync(dfd) < 0 ? -errno : 0;
}

static int local_put(struct backend *b, const char *key, int fd, uint64_t size, const char *sha256_hex)
{
	struct local_backend *l = to_local(b);
	char tmp[NAME_MAX + 1];
	const char *base, *what = NULL;
	struct stat st;
	int dfd, tfd, rc, n;

	if (!key_valid(key))
		return fail_invalid("put", key);
	/* Content-addressed: a complete object of the right size is already
	 * these bytes (only a finished rename makes the real name appear). */
	if (fstatat(l->rootfd, key, &st, 0) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size)
		return 0;

	dfd = open_parent(l, key, &base, 1);
	if (dfd < 0)
		return fail("put", key, "making its directory", dfd);
	if ((rc = link_in(dfd, base, fd, size)) <= 0) {
		what = "linking it in";
		goto out;
	}
	n = snprintf(tmp, sizeof(tmp), TMP_PREFIX "%s.%ld.%ld.%lu", base, (long)getpid(), (long)gettid(),
		     atomic_fetch_add(&l->tmp_counter, 1));
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		rc = -ENAMETOOLONG;
		what = "naming the temp file";
		goto out;
	}
	tfd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (tfd < 0) {
		rc = -errno;
		what = "creating the temp file";
		goto out;
	}
	rc = copy_in(tfd, fd, size, &what);
	if (!rc && fsync(tfd) < 0) {
		rc = -errno;
		what = "syncing";
	}
	if (close(tfd) < 0 && !rc) {
		rc = -errno;
		what = "closing";
	}
	if (!rc && renameat(dfd, tmp, dfd, base) < 0) {
		rc = -errno;
		what = "renaming into place";
	}
	if (rc) {
		unlinkat(dfd, tmp, 0);
		goto out;
	}
	/* The object is complete under its name now; a failed directory sync
	 * only means the rename may not survive a crash, which a retry (after
	 * the early return above) cannot fix either, so report it. */
	if (fsync(dfd) < 0) {
		rc = -errno;
		what = "syncing its directory";
	}
out:
	if (dfd != l->rootfd)
		close(dfd);
	if (rc == -EDQUOT)
		rc = -ENOSPC;
	return rc ? fail("put", key, what, rc) : 0;
}

/* Opens KEY for reading; -ENOENT when it is missing or not a file. */
static int open_object(struct local_backend *l, const char *key, struct stat *st)
{
	int fd = openat(l->rootfd, key, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	if (fstat(fd, st) < 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

static int local_get_range(struct backend *b, const char *key, uint64_t off, size_t len, void *dst, size_t *got)
{
	struct local_backend *l = to_local(b);
	struct stat st;
	size_t done = 0;
	int fd, rc = 0;

	*got = 0;
	if (!key_valid(key))
		return fail_invalid("get", key);
	fd = open_object(l, key, &st);
	if (fd < 0)
		return fail("get", key, NULL, fd);
	if (off >= (uint64_t)st.st_size)
		len = 0;
	else if (len > (uint64_t)st.st_size - off)
		len = (size_t)((uint64_t)st.st_size - off);
	while (done < len) {
		ssize_t n = pread(fd, (char *)dst + done, len - done, (off_t)(off + done));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (n == 0)	/* shrank under us: impossible for our objects, but a short read is honest */
			break;
		done += (size_t)n;
	}
	close(fd);
	*got = done;
	return rc ? fail("get", key, "reading", rc) : 0;
}

static int local_head(struct backend *b, const char *key, struct backend_stat *st)
{
	struct local_backend *l = to_local(b);
	struct stat s;

	if (!key_valid(key))
		return fail_invalid("head", key);
	if (fstatat(l->rootfd, key, &s, 0) < 0)
		return fail("head", key, NULL, errno == ENOTDIR ? -ENOENT : -errno);
	if (!S_ISREG(s.st_mode))
		return fail("head", key, NULL, -ENOENT);
	st->size = (uint64_t)s.st_size;
	return 0;
}

static int local_del(struct backend *b, const char *key)
{
	struct local_backend *l = to_local(b);

	if (!key_valid(key))
		return fail_invalid("delete", key);
	/* No directory fsync: a delete that a crash undoes is simply done
	 * again, every caller treats delete as retryable. */
	if (unlinkat(l->rootfd, key, 0) < 0 && errno != ENOENT && errno != ENOTDIR && errno != EISDIR)
		return fail("delete", key, NULL, -errno);
	return 0;
}

struct list_item {
	char *key;
	uint64_t size;
};

struct list_acc {
	struct list_item *items;
	size_t n, cap;
	const char *prefix;
	size_t plen;
	char path[KEY_MAX_LEN + 2];	/* the directory being walked, "" or "a/b/" */
};

static int list_add(struct list_acc *acc, const char *key, uint64_t size)
{
	if (acc->n == acc->cap) {
		size_t cap = acc->cap ? acc->cap * 2 : 256;
		struct list_item *v = realloc(acc->items, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		acc->items = v;
		acc->cap = cap;
	}
	acc->items[acc->n].key = strdup(key);
	if (!acc->items[acc->n].key)
		return -ENOMEM;
	acc->items[acc->n++].size = size;
	return 0;
}

/* Walks the directory DFD (whose path is acc->path, of length PLEN) and
 * everything under it that can hold keys with the prefix.  Takes DFD. */
static int list_walk(int dfd, size_t plen, struct list_acc *acc)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int rc = 0;

	if (!d) {
		rc = -errno;
		close(dfd);
		return rc;
	}
	for (;;) {
		size_t nlen, cmp;
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (!de) {
			rc = errno ? -errno : 0;
			break;
		}
		if (de->d_name[0] == '.' && (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
					     !strncmp(de->d_name, TMP_PREFIX, TMP_PREFIX_LEN)))
			continue;
		nlen = strlen(de->d_name);
		if (plen + nlen + 1 >= sizeof(acc->path))
			continue;	/* deeper than any key can be */
		memcpy(acc->path + plen, de->d_name, nlen + 1);
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;	/* deleted while we walk */
			rc = -errno;
			break;
		}
		if (S_ISREG(st.st_mode)) {
			if (strncmp(acc->path, acc->prefix, acc->plen) == 0 && key_valid(acc->path))
				rc = list_add(acc, acc->path, (uint64_t)st.st_size);
		} else if (S_ISDIR(st.st_mode)) {
			int sub;

			acc->path[plen + nlen] = '/';
			acc->path[plen + nlen + 1] = '\0';
			/* Descend only where the prefix can still match. */
			cmp = plen + nlen + 1 < acc->plen ? plen + nlen + 1 : acc->plen;
			if (strncmp(acc->path, acc->prefix, cmp) != 0)
				continue;
			sub = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				if (errno == ENOENT)
					continue;
				rc = -errno;
				break;
			}
			rc = list_walk(sub, plen + nlen + 1, acc);
		}
		if (rc)
			break;
	}
	closedir(d);
	acc->path[plen] = '\0';
	return rc;
}

static int item_cmp(const void *a, const void *b)
{
	return strcmp(((const struct list_item *)a)->key, ((const struct list_item *)b)->key);
}

static int local_list(struct backend *b, const char *prefix, backend_list_cb cb, void *arg)
{
	struct local_backend *l = to_local(b);
	struct list_acc *acc;
	size_t i;
	int fd, rc;

	if (!prefix)
		prefix = "";
	acc = calloc(1, sizeof(*acc));
	if (!acc)
		return fail("list", prefix, NULL, -ENOMEM);
	acc->prefix = prefix;
	acc->plen = strlen(prefix);
	/* A fresh fd: readdir moves the offset, and ROOTFD is shared. */
	fd = openat(l->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	rc = fd < 0 ? -errno : list_walk(fd, 0, acc);
	if (rc)
		fail("list", prefix, NULL, rc);
	else if (acc->n)
		qsort(acc->items, acc->n, sizeof(*acc->items), item_cmp);
	for (i = 0; i < acc->n; i++) {
		if (!rc)
			rc = cb(acc->items[i].key, acc->items[i].size, arg);
		free(acc->items[i].key);
	}
	free(acc->items);
	free(acc);
	return rc;
}

static int local_space(struct backend *b, uint64_t *total, uint64_t *avail)
{
	struct local_backend *l = to_local(b);
	struct statvfs sv;

	if (fstatvfs(l->rootfd, &sv) < 0)
		return fail("measure", l->root, NULL, -errno);
	*total = (uint64_t)sv.f_blocks * sv.f_frsize;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return 0;
}

static void local_free(struct backend *b)
{
	struct local_backend *l = to_local(b);

	close(l->rootfd);
	free(l->root);
	free(l);
}

static const struct backend_ops local_ops = {
	.name = "local",
	.put = local_put,
	.get_range = local_get_range,
	.head = local_head,
	.del = local_del,
	.list = local_list,
	.space = local_space,
	.free = local_free,
};

/* mkdir -p ROOT: missing parents get 0755 (less umask), ROOT itself 0700. */
static int make_root(const char *root)
{
	char *parent;
	int rc = 0;

	if (mkdir(root, 0700) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -errno;
	parent = g_path_get_dirname(root);
	if (g_mkdir_with_parents(parent, 0755) != 0 || (mkdir(root, 0700) != 0 && errno != EEXIST))
		rc = -errno;
	g_free(parent);
	return rc;
}

struct backend *local_backend_open(const char *root)
{
	struct local_backend *l;
	int rc, fd;

	if (!root || !*root) {
		log_error("local store: cannot open '': empty path");
		errno = EINVAL;
		return NULL;
	}
	rc = make_root(root);
	if (rc) {
		log_error("local store: cannot create '%s': %s", root, strerror(-rc));
		errno = -rc;
		return NULL;
	}
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno;
		log_error("local store: cannot open '%s': %s", root, strerror(rc));
		errno = rc;
		return NULL;
	}
	l = calloc(1, sizeof(*l));
	if (l)
		l->root = strdup(root);
	if (!l || !l->root) {
		free(l);
		close(fd);
		log_error("local store: cannot open '%s': %s", root, strerror(ENOMEM));
		errno = ENOMEM;
		return NULL;
	}
	l->base.ops = &local_ops;
	l->rootfd = fd;
	atomic_init(&l->tmp_counter, 0);
	return &l->base;
}
