/* fs.h — the file-system calls that make output durable: whole writes,
 * directory creation and directory fsync. Every writer of state or output
 * (snapshots, the dead-letter file, the CSV) goes through here, so that
 * this is the one place to change how files are made. Opening, naming and
 * what a file holds stay with the writer. */
#ifndef REGSTREAM_UTIL_FS_H
#define REGSTREAM_UTIL_FS_H

#include <stddef.h>
#include <sys/types.h>

/* write(2) until all len bytes are written (EINTR retried). 0, or -1 with
 * errno. */
int fs_write_all(int fd, const void *data, size_t len);

/* mkdir -p: every missing component of dir, each made with mode (before
 * the umask). 0 when dir is (now) a directory, or -1 with errno. */
int fs_mkdirs(const char *dir, mode_t mode);

/* fsync the directory itself, so that a rename or a new file in it is
 * durable. 0, or -1 with errno. */
int fs_fsync_dir(const char *dir);

#endif
