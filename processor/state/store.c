/* store.c — the snapshot store (see store.h): file names, listing, atomic
 * writes, pruning, the newest valid snapshot; the store interface and its
 * directory back end. What a snapshot holds is state/snapshot.c's; the
 * topic back end is kafka/snapshot_topic.c. */
#include "state/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/log.h"

enum { TEMP_STALE_SECONDS = 600, POSITION_DIGITS = 20 };

static const char *errno_text(int e, char *buf, size_t len) {
  /* _GNU_SOURCE: the GNU strerror_r, thread-safe, returns the text. */
  return strerror_r(e, buf, len);
}

/* ---- names ---- */

void snapshot_store_path(const char *dir, const char *shard_id, int64_t position, char *path,
                         size_t len) {
  snprintf(path, len, "%s/%s.%020lld.snap", dir, shard_id, (long long)position);
}

/* The position of "<id>.<20 digits>" at p (id_len bytes of id, then the
 * digits), with the rest of the name after the digits in *rest; -1 when it
 * does not have that shape. */
static int64_t parse_position(const char *p, const char **rest) {
  int64_t pos = 0;
  for (int i = 0; i < POSITION_DIGITS; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    if (pos > (INT64_MAX - (p[i] - '0')) / 10)
      return -1;
    pos = pos * 10 + (p[i] - '0');
  }
  *rest = p + POSITION_DIGITS;
  return pos;
}

/* A directory entry's name as a snapshot (kind 1: "<id>.<pos>.snap") or a
 * temporary file (kind 2: ".<id>.<pos>.snap.tmp.<x>"): its shard id (into
 * id) and position, else -1. */
static int64_t parse_name(const char *name, char id[SNAPSHOT_SHARD_ID_MAX], int *kind) {
  *kind = name[0] == '.' ? 2 : 1;
  const char *p = name + (*kind == 2);
  const char *suffix = *kind == 1 ? ".snap" : ".snap.tmp.";
  /* "<id>.<20 digits><suffix...>": the id is all before the last '.' that
   * is followed by 20 digits and the suffix. */
  for (const char *dot = strrchr(p, '.'); dot && dot > p; dot--) {
    if (*dot != '.')
      continue;
    const char *rest;
    int64_t pos = parse_position(dot + 1, &rest);
    if (pos < 0 || strncmp(rest, suffix, strlen(suffix)) != 0)
      continue;
    if (*kind == 1 ? rest[5] != 0 : rest[10] == 0)
      continue;
    size_t id_len = (size_t)(dot - p);
    if (id_len >= SNAPSHOT_SHARD_ID_MAX)
      return -1;
    memcpy(id, p, id_len);
    id[id_len] = 0;
    return snapshot_shard_id_valid(id) ? pos : -1;
  }
  return -1;
}

typedef struct snap_file {
  int64_t position;
  char name[SNAPSHOT_SHARD_ID_MAX + 64];
} snap_file;

static int by_position_desc(const void *a, const void *b) {
  int64_t x = ((const snap_file *)a)->position, y = ((const snap_file *)b)->position;
  return (x < y) - (x > y);
}

/* The shard's snapshots (kind 1) or temporary files (kind 2) in dir, newest
 * first. *count gets their number; NULL with *count 0 when there are none.
 * *failed (errno set) when the directory cannot be read. */
static snap_file *list_shard(const char *dir, const char *id, int want_kind, size_t *count,
                             int *failed) {
  *count = 0;
  *failed = 0;
  DIR *d = opendir(dir);
  if (!d) {
    *failed = 1;
    return NULL;
  }
  size_t n = 0, cap = 0;
  snap_file *files = NULL;
  struct dirent *e;
  while ((e = readdir(d))) {
    int kind;
    char name_id[SNAPSHOT_SHARD_ID_MAX];
    int64_t pos = parse_name(e->d_name, name_id, &kind);
    size_t name_len = strlen(e->d_name);
    if (pos < 0 || kind != want_kind || strcmp(name_id, id) != 0 || name_len >= sizeof files->name)
      continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 8;
      snap_file *nf = realloc(files, ncap * sizeof *nf);
      if (!nf) {
        free(files);
        closedir(d);
        errno = ENOMEM;
        *failed = 1;
        return NULL;
      }
      files = nf;
      cap = ncap;
    }
    files[n].position = pos;
    memcpy(files[n].name, e->d_name, name_len + 1);
    n++;
  }
  closedir(d);
  if (n)
    qsort(files, n, sizeof *files, by_position_desc);
  *count = n;
  return files;
}

int snapshot_store_list(const char *dir, const char *prefix, snapshot_entry **entries,
                        size_t *count, char *err, size_t errlen) {
  *entries = NULL;
  *count = 0;
  DIR *d = opendir(dir);
  if (!d) {
    if (errno == ENOENT)
      return 0;
    char eb[128];
    snprintf(err, errlen, "snapshot directory %s: %s", dir, errno_text(errno, eb, sizeof eb));
    return -1;
  }
  size_t n = 0, cap = 0, prefix_len = strlen(prefix);
  snapshot_entry *list = NULL;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d))) {
    int kind;
    char id[SNAPSHOT_SHARD_ID_MAX];
    int64_t pos = parse_name(e->d_name, id, &kind);
    if (pos < 0 || kind != 1 || strncmp(id, prefix, prefix_len) != 0)
      continue;
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 16;
      snapshot_entry *grown = realloc(list, ncap * sizeof *grown);
      if (!grown) {
        snprintf(err, errlen, "snapshot directory %s: out of memory listing it", dir);
        rc = -1;
        break;
      }
      list = grown;
      cap = ncap;
    }
    memcpy(list[n].shard_id, id, sizeof id);
    list[n].position = pos;
    n++;
  }
  closedir(d);
  if (rc < 0) {
    free(list);
    return -1;
  }
  *entries = list;
  *count = n;
  return 0;
}

void snapshot_store_remove(const char *dir, const char *shard_id, int64_t position) {
  char path[PATH_MAX];
  snapshot_store_path(dir, shard_id, position, path, sizeof path);
  unlink(path);
}

void snapshot_store_remove_all(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  if (!d)
    return;
  size_t prefix_len = strlen(prefix);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int kind;
    char id[SNAPSHOT_SHARD_ID_MAX], path[PATH_MAX];
    if (parse_name(e->d_name, id, &kind) < 0 || strncmp(id, prefix, prefix_len) != 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
}

/* ---- writing ---- */

/* Delete all but the newest SNAPSHOT_KEEP snapshots of the shard, and its
 * temporary files whose position is below the newest snapshot's and that
 * nobody has written to for TEMP_STALE_SECONDS. Best effort: a file that
 * cannot be deleted stays. */
static void prune(const char *dir, const char *id) {
  size_t n, t;
  int failed;
  snap_file *snaps = list_shard(dir, id, 1, &n, &failed);
  if (!snaps)
    return;
  char path[PATH_MAX];
  for (size_t i = SNAPSHOT_KEEP; i < n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, snaps[i].name);
    unlink(path);
  }
  snap_file *tmps = list_shard(dir, id, 2, &t, &failed);
  time_t now = time(NULL);
  for (size_t i = 0; i < t; i++) {
    if (tmps[i].position >= snaps[0].position)
      continue; /* perhaps another writer's, still at work */
    snprintf(path, sizeof path, "%s/%s", dir, tmps[i].name);
    /* Another instance sharing the directory may be writing an older
     * position right now (a hand-over): only a crash's leftovers go. */
    struct stat sb;
    if (stat(path, &sb) == 0 && now - sb.st_mtime < TEMP_STALE_SECONDS)
      continue;
    unlink(path);
  }
  free(tmps);
  free(snaps);
}

/* Open a new temporary file for the shard's snapshot at position, private
 * to its owner (it becomes the snapshot by rename, keeping its mode). */
static int open_temp(const char *dir, const snapshot_meta *m, char *path, size_t pathlen) {
  static unsigned counter;
  for (int attempt = 0; attempt < 100; attempt++) {
    unsigned c = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int len = snprintf(path, pathlen, "%s/.%s.%020lld.snap.tmp.%ld-%u-%ld", dir, m->shard_id,
                       (long long)m->position, (long)getpid(), c, (long)ts.tv_nsec);
    if (len < 0 || (size_t)len >= pathlen) {
      errno = ENAMETOOLONG;
      return -1;
    }
    int fd = fs_create_private(path, O_WRONLY | O_EXCL); /* 0600: per-person state */
    if (fd >= 0 || errno != EEXIST)
      return fd;
  }
  return -1;
}

/* The atomic write of snapshot_store_write, without the pruning. */
static int write_atomic(const char *dir, const snapshot_image *img, size_t *bytes, char *err,
                        size_t errlen) {
  const snapshot_meta *m = snapshot_image_meta(img);
  char eb[128], tmp[PATH_MAX], final[PATH_MAX], why[PATH_MAX + 256];
  if (!snapshot_shard_id_valid(m->shard_id)) {
    snprintf(err, errlen,
             "snapshot: shard id '%.*s' is not a file name prefix (letters, digits, "
             "'.', '_', '-'; not starting with '.')",
             SNAPSHOT_SHARD_ID_MAX - 1, m->shard_id);
    return -1;
  }
  if (!dir || !*dir) {
    snprintf(err, errlen, "snapshot of %s: no snapshot directory", m->shard_id);
    return -1;
  }
  int flen =
      snprintf(final, sizeof final, "%s/%s.%020lld.snap", dir, m->shard_id, (long long)m->position);
  if (flen < 0 || (size_t)flen >= sizeof final) {
    snprintf(err, errlen, "snapshot of %s: directory path too long", m->shard_id);
    return -1;
  }
  if (fs_mkdirs_private(dir) < 0) {
    snprintf(err, errlen, "cannot make snapshot directory %s: %s", dir,
             errno_text(errno, eb, sizeof eb));
    return -1;
  }
  int fd = open_temp(dir, m, tmp, sizeof tmp);
  if (fd < 0) {
    snprintf(err, errlen, "snapshot of %s: cannot create a temporary file in %s: %s", m->shard_id,
             dir, errno_text(errno, eb, sizeof eb));
    return -1;
  }
  uint64_t size = 0;
  if (snapshot_image_encode(img, fd, &size, why, sizeof why) < 0)
    goto fail;
  if (fs_fsync(fd) < 0) {
    snprintf(why, sizeof why, "fsync: %s", errno_text(errno, eb, sizeof eb));
    goto fail;
  }
  int closed = close(fd), e;
  fd = -1;
  if (closed < 0) {
    snprintf(why, sizeof why, "close: %s", errno_text(errno, eb, sizeof eb));
    goto fail;
  }
  if (fs_rename(tmp, final) < 0) {
    snprintf(why, sizeof why, "rename to %s: %s", final, errno_text(errno, eb, sizeof eb));
    goto fail;
  }
  if (fs_fsync_dir(dir) < 0) {
    /* The file is complete and in place; only its durability is in doubt. */
    snprintf(err, errlen, "snapshot %s: fsync of the directory: %s", final,
             errno_text(errno, eb, sizeof eb));
    return -1;
  }
  if (bytes)
    *bytes = (size_t)size;
  return 0;
fail:
  e = errno;
  if (fd >= 0)
    close(fd);
  unlink(tmp); /* a temporary file is never read: gone or not, nothing trusts it */
  snprintf(err, errlen, "snapshot of %s into %s: %s", m->shard_id, dir, why);
  errno = e;
  return -1;
}

int snapshot_store_write(const char *dir, const snapshot_image *img, size_t *bytes, char *err,
                         size_t errlen) {
  if (write_atomic(dir, img, bytes, err, errlen) < 0)
    return -1;
  prune(dir, snapshot_image_meta(img)->shard_id);
  return 0;
}

int snapshot_store_write_shard(const char *dir, const shard *s, const snapshot_meta *meta,
                               char *err, size_t errlen) {
  snapshot_image *img = snapshot_capture(s, meta);
  if (!img) {
    snprintf(err, errlen, "snapshot of %s: out of memory capturing %zu persons", meta->shard_id,
             s->persons.count);
    return -1;
  }
  int rc = snapshot_store_write(dir, img, NULL, err, errlen);
  snapshot_image_free(img);
  return rc;
}

/* ---- reading ---- */

int snapshot_store_load_latest(const char *dir, const char *shard_id, uint64_t fingerprint,
                               shard *s, snapshot_meta *meta, char *err, size_t errlen) {
  char eb[128];
  if (!snapshot_shard_id_valid(shard_id)) {
    snprintf(err, errlen, "snapshot: shard id '%.*s' is not a file name prefix",
             SNAPSHOT_SHARD_ID_MAX - 1, shard_id);
    return -1;
  }
  size_t n;
  int failed;
  snap_file *files = list_shard(dir, shard_id, 1, &n, &failed);
  if (failed) {
    if (errno == ENOENT)
      return 0;
    if (errno == ENOMEM) {
      snprintf(err, errlen, "snapshot directory %s: out of memory listing it", dir);
      return -1;
    }
    snprintf(err, errlen, "snapshot directory %s: %s", dir, errno_text(errno, eb, sizeof eb));
    return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    char path[PATH_MAX], why[384];
    snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
    snapshot_read_kind kind = snapshot_read_checked(path, shard_id, files[i].position, fingerprint,
                                                    s, meta, why, sizeof why);
    if (kind == SNAPSHOT_READ_OK) {
      rc = 1;
      break;
    }
    if (kind == SNAPSHOT_READ_DAMAGED) {
      log_fields(LOG_WARN, "snapshot", json_pack("{s:s,s:s}", "path", path, "why", why),
                 "snapshot %s is unusable (%s); trying an older one", path, why);
      continue;
    }
    if (kind == SNAPSHOT_READ_REFUSED)
      snprintf(err, errlen,
               "snapshot %s: %s. Run with the rule options and reader schema that wrote it, or "
               "start afresh with an empty --snapshot-dir",
               path, why);
    else
      snprintf(err, errlen, "snapshot %s: %s", path, why);
    rc = -1;
    break;
  }
  free(files);
  return rc;
}

/* ---- the store interface, and its directory back end ---- */

typedef struct dir_store {
  snapshot_store base;
  char *dir;
} dir_store;

static int dir_save(snapshot_store *st, const snapshot_image *img, size_t *bytes, char *err,
                    size_t errlen) {
  return write_atomic(((dir_store *)st)->dir, img, bytes, err, errlen);
}

static int dir_load(snapshot_store *st, const char *shard_id, uint64_t fingerprint, shard *s,
                    snapshot_meta *meta, char *err, size_t errlen) {
  return snapshot_store_load_latest(((dir_store *)st)->dir, shard_id, fingerprint, s, meta, err,
                                    errlen);
}

static void dir_prune(snapshot_store *st, const char *shard_id) {
  prune(((dir_store *)st)->dir, shard_id);
}

static void dir_free(snapshot_store *st) {
  free(((dir_store *)st)->dir);
  free(st);
}

static const snapshot_store_ops dir_ops = {dir_save, dir_load, dir_prune, dir_free};

snapshot_store *snapshot_store_dir(const char *dir) {
  dir_store *d = calloc(1, sizeof *d);
  if (!d || !(d->dir = strdup(dir))) {
    free(d);
    return NULL;
  }
  d->base.ops = &dir_ops;
  d->base.what = "--snapshot-dir";
  return &d->base;
}

int snapshot_store_save(snapshot_store *st, const snapshot_image *img, size_t *bytes, char *err,
                        size_t errlen) {
  if (st->ops->save(st, img, bytes, err, errlen) < 0)
    return -1;
  st->ops->prune(st, snapshot_image_meta(img)->shard_id);
  return 0;
}

int snapshot_store_load(snapshot_store *st, const char *shard_id, uint64_t fingerprint, shard *s,
                        snapshot_meta *meta, char *err, size_t errlen) {
  return st->ops->load_latest(st, shard_id, fingerprint, s, meta, err, errlen);
}

void snapshot_store_free(snapshot_store *st) {
  if (st)
    st->ops->free(st);
}
