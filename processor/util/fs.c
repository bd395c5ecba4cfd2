/* fs.c — see fs.h. The fault hook is at the top; the calls follow. */
#include "util/fs.h"
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the fault hook (REGSTREAM_FAULT, REGSTREAM_FAULT_TRACE) ---- */

typedef enum fs_op { OP_OPEN, OP_WRITE, OP_FSYNC, OP_RENAME, OP_MKDIR, OP_READ, OP_COUNT } fs_op;
static const char *const op_names[OP_COUNT] = {"open", "write", "fsync", "rename", "mkdir", "read"};

enum { FAULTS_MAX = 16, FAULT_TEXT_MAX = 256 };

typedef struct fault_rule {
  fs_op op;
  long n;
  int error;
  char text[FAULT_TEXT_MAX]; /* empty: every path */
  atomic_long calls;
} fault_rule;

enum { HOOK_UNREAD, HOOK_OFF, HOOK_ON };
static atomic_int hook_state = HOOK_UNREAD;
static pthread_once_t hook_once = PTHREAD_ONCE_INIT;
static fault_rule rules[FAULTS_MAX];
static int rule_count;
static int trace_fd = -1;
static atomic_long op_calls[OP_COUNT];

static const struct {
  const char *name;
  int value;
} errno_names[] = {{"ENOSPC", ENOSPC}, {"EIO", EIO},     {"EACCES", EACCES}, {"EDQUOT", EDQUOT},
                   {"EROFS", EROFS},   {"EPERM", EPERM}, {"ENOENT", ENOENT}};

static void hook_refuse(const char *spec, const char *why) {
  log_msg(LOG_ERROR, "fault", "REGSTREAM_FAULT='%s' (a test hook): %s", spec, why);
  exit(2);
}

static void hook_read(void) {
  const char *spec = getenv("REGSTREAM_FAULT"), *trace = getenv("REGSTREAM_FAULT_TRACE");
  if (trace && *trace) {
    trace_fd = open(trace, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (trace_fd < 0)
      hook_refuse(trace, "REGSTREAM_FAULT_TRACE cannot be opened");
  }
  for (const char *p = spec && *spec ? spec : NULL; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    char item[FAULT_TEXT_MAX + 64];
    if (len >= sizeof item)
      hook_refuse(spec, "an item is too long");
    if (rule_count == FAULTS_MAX)
      hook_refuse(spec, "too many items");
    memcpy(item, p, len);
    item[len] = 0;
    fault_rule *r = &rules[rule_count];
    char *op = item, *n = strchr(op, ':'), *err = n ? strchr(n + 1, ':') : NULL, *text = NULL;
    if (!n || !err)
      hook_refuse(spec, "each item is OP:N:ERRNO[:TEXT]");
    *n++ = 0;
    *err++ = 0;
    if ((text = strchr(err, ':')))
      *text++ = 0;
    r->op = OP_COUNT;
    for (int o = 0; o < OP_COUNT; o++)
      if (strcmp(op, op_names[o]) == 0)
        r->op = (fs_op)o;
    if (r->op == OP_COUNT)
      hook_refuse(spec, "OP is one of open, write, fsync, rename, mkdir, read");
    char *stop;
    r->n = strtol(n, &stop, 10);
    if (*stop || r->n < 1)
      hook_refuse(spec, "N counts from 1");
    r->error = 0;
    for (size_t e = 0; e < sizeof errno_names / sizeof *errno_names; e++)
      if (strcmp(err, errno_names[e].name) == 0)
        r->error = errno_names[e].value;
    if (!r->error && ((r->error = (int)strtol(err, &stop, 10)) <= 0 || *stop))
      hook_refuse(spec, "ERRNO is ENOSPC, EIO, EACCES, EDQUOT, EROFS, EPERM, ENOENT or a number");
    snprintf(r->text, sizeof r->text, "%s", text ? text : "");
    rule_count++;
    p = end ? end + 1 : NULL;
  }
  atomic_store(&hook_state, rule_count || trace_fd >= 0 ? HOOK_ON : HOOK_OFF);
}

/* The path behind fd, for matching and tracing (test runs only). */
static const char *fd_path(int fd, char *buf, size_t len) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, buf, len - 1);
  buf[n < 0 ? 0 : n] = 0;
  return buf;
}

/* The slow path: 0, or the errno this call is to fail with. */
static int hook_call(fs_op op, int fd, const char *path) {
  pthread_once(&hook_once, hook_read);
  if (atomic_load(&hook_state) == HOOK_OFF)
    return 0;
  char buf[PATH_MAX];
  if (!path)
    path = fd_path(fd, buf, sizeof buf);
  long index = atomic_fetch_add(&op_calls[op], 1) + 1;
  if (trace_fd >= 0) {
    char line[PATH_MAX + 64];
    int n = snprintf(line, sizeof line, "%s %ld %s\n", op_names[op], index, path);
    if (n > 0 && write(trace_fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
      n = 0; /* a trace is best effort */
  }
  int fail = 0;
  for (int i = 0; i < rule_count; i++) {
    fault_rule *r = &rules[i];
    if (r->op != op || (r->text[0] && !strstr(path, r->text)))
      continue;
    if (atomic_fetch_add(&r->calls, 1) + 1 == r->n && !fail)
      fail = r->error;
  }
  return fail;
}

/* One predictable branch per call when the hook is off. */
static inline int fault(fs_op op, int fd, const char *path) {
  if (__builtin_expect(atomic_load_explicit(&hook_state, memory_order_relaxed) == HOOK_OFF, 1))
    return 0;
  return hook_call(op, fd, path);
}

/* ---- the calls ---- */

int fs_open(const char *path, int flags, mode_t mode) {
  int e = fault(OP_OPEN, -1, path);
  if (e) {
    errno = e;
    return -1;
  }
  return open(path, flags | O_CLOEXEC, mode);
}

static int is_private(const struct stat *st) {
  return (st->st_mode & 07777) == 0600 && st->st_uid == geteuid();
}

int fs_create_private(const char *path, int flags) {
  int e = fault(OP_OPEN, -1, path);
  if (e) {
    errno = e;
    return -1;
  }
  flags |= O_CREAT | O_CLOEXEC;
  int fd = open(path, flags, 0600);
  struct stat st;
  if (fd < 0)
    return -1;
  if (fstat(fd, &st) < 0)
    goto fail;
  if (!S_ISREG(st.st_mode) || is_private(&st))
    return fd; /* new (0600 & ~umask: set below when the umask took owner bits) */
  if ((flags & O_TRUNC) && !(flags & O_EXCL)) {
    /* Its content is gone anyway; a new inode, so that nobody who opened the
     * old one while it was readable reads what is written now. */
    close(fd);
    if (unlink(path) < 0 || (fd = open(path, flags | O_EXCL, 0600)) < 0)
      return -1;
  }
  if (fchmod(fd, 0600) < 0)
    goto fail;
  return fd;
fail:
  e = errno;
  close(fd);
  errno = e;
  return -1;
}

/* write(2) at the file position (offset < 0) or pwrite(2) at offset, until
 * all len bytes are written. */
static ssize_t write_at(int fd, const void *p, size_t len, off_t offset) {
  return offset < 0 ? write(fd, p, len) : pwrite(fd, p, len, offset);
}

static int write_fully(int fd, const void *data, size_t len, off_t offset) {
  const unsigned char *p = data;
  int e = fault(OP_WRITE, fd, NULL);
  if (e) { /* as a disk that fills up mid-write: half of it lands */
    if (len > 1 && write_at(fd, p, len / 2, offset) < 0)
      e = errno;
    errno = e;
    return -1;
  }
  while (len) {
    ssize_t w = write_at(fd, p, len, offset);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
    if (offset >= 0)
      offset += w;
  }
  return 0;
}

int fs_write_all(int fd, const void *data, size_t len) {
  return write_fully(fd, data, len, -1);
}

int fs_pwrite_all(int fd, const void *data, size_t len, off_t offset) {
  return write_fully(fd, data, len, offset);
}

ssize_t fs_pread(int fd, void *data, size_t len, off_t offset) {
  int e = fault(OP_READ, fd, NULL);
  if (e) {
    errno = e;
    return -1;
  }
  ssize_t n;
  do
    n = pread(fd, data, len, offset);
  while (n < 0 && errno == EINTR);
  return n;
}

int fs_truncate(int fd, off_t length) {
  int e = fault(OP_WRITE, fd, NULL);
  if (e) {
    errno = e;
    return -1;
  }
  return ftruncate(fd, length);
}

int fs_fsync(int fd) {
  int e = fault(OP_FSYNC, fd, NULL);
  if (e) {
    errno = e;
    return -1;
  }
  return fsync(fd);
}

int fs_rename(const char *from, const char *to) {
  int e = fault(OP_RENAME, -1, to);
  if (e) {
    errno = e;
    return -1;
  }
  return rename(from, to);
}

int fs_commit(int fd, int written, const char *tmp, const char *path, const char **step) {
  int rc = written ? 0 : -1, e = 0;
  if (rc == 0 && fs_fsync(fd) != 0) {
    *step = "fsync";
    e = errno;
    rc = -1;
  }
  if (close(fd) != 0 && rc == 0) {
    *step = "close";
    e = errno;
    rc = -1;
  }
  if (rc == 0 && fs_rename(tmp, path) != 0) {
    *step = "rename into place";
    e = errno;
    rc = -1;
  }
  if (e)
    errno = e;
  return rc;
}

int fs_mkdirs_private(const char *dir) {
  char path[PATH_MAX];
  size_t len = strlen(dir);
  if (len == 0 || len >= sizeof path) {
    errno = len ? ENAMETOOLONG : ENOENT;
    return -1;
  }
  int e = fault(OP_MKDIR, -1, dir);
  if (e) {
    errno = e;
    return -1;
  }
  memcpy(path, dir, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (path[i] != '/' && path[i] != '\0')
      continue;
    char c = path[i];
    path[i] = '\0';
    if (mkdir(path, 0700) == 0) {
      /* Made here: exactly 0700 (the umask may have taken owner bits).
       * One that exists stays as it is. */
      if (chmod(path, 0700) < 0) {
        path[i] = c;
        return -1;
      }
    } else if (errno != EEXIST) {
      path[i] = c;
      return -1;
    }
    path[i] = c;
  }
  struct stat st;
  if (stat(dir, &st) < 0)
    return -1;
  if (!S_ISDIR(st.st_mode)) {
    errno = ENOTDIR;
    return -1;
  }
  return 0;
}

int fs_fsync_dir(const char *dir) {
  int e = fault(OP_FSYNC, -1, dir);
  if (e) {
    errno = e;
    return -1;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  e = errno;
  close(fd);
  errno = e;
  return rc;
}

int fs_fsync_parent(const char *path) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/');
  if (!slash)
    return fs_fsync_dir(".");
  size_t len = slash == path ? 1 : (size_t)(slash - path);
  if (len >= sizeof dir) {
    errno = ENAMETOOLONG;
    return -1;
  }
  memcpy(dir, path, len);
  dir[len] = 0;
  return fs_fsync_dir(dir);
}

const char *fs_remedy(int e) {
  switch (e) {
  case ENOSPC:
  case EDQUOT:
    return "free space on that disk (or raise the quota)";
  case EACCES:
  case EPERM:
    return "fix the permissions";
  case EROFS:
    return "make that file system writable";
  case EIO:
    return "check the disk (see the kernel log) or use another one";
  default:
    return "fix the cause";
  }
}
