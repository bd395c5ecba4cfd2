/* fs.h — the file-system calls that make output durable: opening output
 * files (private ones 0600), whole writes, fsync, rename, directory creation
 * (0700) and directory fsync, and the fault-injection hook the disk-fault
 * tests use. Every writer of state or output (snapshots, the dead-letter
 * file, the CSV) goes through here, so that this is the one place to change
 * how files are made. Naming files and what they hold stay with the writer;
 * reading stays out, but for fs_pread, the input's reads past the page cache
 * (avro/ocf_direct.c), so that their failures can be injected too.
 *
 * Test hook, as SQLite's test VFS: the environment variable
 *   REGSTREAM_FAULT="OP:N:ERRNO[:TEXT],..."
 * makes the Nth call of kind OP fail with ERRNO, OP one of open (fs_open,
 * fs_create_private), write (fs_write_all, fs_pwrite_all, fs_truncate),
 * fsync (fs_fsync, fs_fsync_dir), rename (fs_rename), mkdir (fs_mkdirs_private,
 * once per call), read (fs_pread); ERRNO a name (ENOSPC, EIO, EACCES, EDQUOT, EROFS, EPERM) or
 * a number; with TEXT only calls on a path containing TEXT count. A failed
 * write writes half its bytes first (as a full disk does), then fails.
 * REGSTREAM_FAULT_TRACE=FILE appends "OP INDEX PATH" per call to FILE (to
 * choose N). Both are read once, at the first call; unset, each call costs
 * one predictable branch. A malformed REGSTREAM_FAULT ends the program
 * (exit 2) with a message. */
#ifndef REGSTREAM_UTIL_FS_H
#define REGSTREAM_UTIL_FS_H

#include <stddef.h>
#include <sys/types.h>

/* open(2) of an output file that holds no personal data (the CSV): the
 * usual mode, umask applied. fd, or -1 with errno. */
int fs_open(const char *path, int flags, mode_t mode);

/* Open (creating it when missing) a file private to its owner: mode 0600
 * whatever the umask. flags: O_WRONLY or O_RDWR, plus O_EXCL, O_TRUNC as
 * wanted (O_CREAT and O_CLOEXEC are added). A regular file that exists is
 * made 0600 (fchmod) before anything is written to it; with O_TRUNC one that
 * others could read, or that is not ours, is replaced by a new file (someone
 * may hold the old one open, and permissions are checked only at open). A
 * file of someone else's that cannot be made private fails (EPERM). Not a
 * regular file (/dev/null, a pipe): opened as it is. fd, or -1 with errno. */
int fs_create_private(const char *path, int flags);

/* write(2) until all len bytes are written (EINTR retried). 0, or -1 with
 * errno. */
int fs_write_all(int fd, const void *data, size_t len);
/* pwrite(2) all len bytes at offset. 0, or -1 with errno. */
int fs_pwrite_all(int fd, const void *data, size_t len, off_t offset);
/* pread(2), EINTR retried: bytes read (short at the end of the file), or
 * -1 with errno. */
ssize_t fs_pread(int fd, void *data, size_t len, off_t offset);
/* ftruncate(2). 0, or -1 with errno. */
int fs_truncate(int fd, off_t length);
/* fsync(2). 0, or -1 with errno. */
int fs_fsync(int fd);
/* rename(2). 0, or -1 with errno. */
int fs_rename(const char *from, const char *to);
/* The end of a whole-file write into tmp (fd, open): fsync, close, rename
 * to path. When written is 0 (the writing failed) fd is only closed. 0, or
 * -1 with errno and *step the call that failed ("fsync", "close", "rename
 * into place"); fd is closed either way. The parent folder's fsync stays
 * the caller's. */
int fs_commit(int fd, int written, const char *tmp, const char *path, const char **step);

/* mkdir -p: every missing component of dir is made 0700, whatever the
 * umask (the folders regstream makes hold snapshots: personal data).
 * Folders that exist are left as they are: their owner chose their mode.
 * 0 when dir is (now) a directory, or -1 with errno. */
int fs_mkdirs_private(const char *dir);

/* fsync the directory itself, so that a rename or a new file in it is
 * durable. 0, or -1 with errno. */
int fs_fsync_dir(const char *dir);
/* fs_fsync_dir of the directory that holds path ("." when it has no '/'). */
int fs_fsync_parent(const char *path);

/* What to do about a failure with errno e, for a one-line message: "free
 * space on that disk", "fix its permissions", ... */
const char *fs_remedy(int e);

#endif
