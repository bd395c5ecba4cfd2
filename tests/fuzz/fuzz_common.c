/* fuzz_common.c — owned by the fuzzing work (tests/fuzz/): the helpers of
 * fuzz_common.h, linked into every harness (libFuzzer and corpus-driver
 * builds alike). */
#include "fuzz_common.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void fuzz_fail(const char *file, int line, const char *what, const char *detail) {
  fprintf(stderr, "fuzz invariant broken at %s:%d: %s%s%s\n", file, line, what, detail ? " — " : "",
          detail ? detail : "");
  abort();
}

void fuzz_check_record(const pm_record *rec) {
  FUZZ_CHECK(rec->visitation < VISITATION_COUNT, "visitation out of range");
  FUZZ_CHECK(rec->benefit < BENEFIT_COUNT, "benefit out of range");
  FUZZ_CHECK((rec->flags & ~0x3fu) == 0, "flags beyond the six defined bits");
  FUZZ_CHECK(rec->reserved == 0, "reserved byte not 0");
}

void fuzz_check_err_text(const char *err, size_t errlen) {
  const char *nul = memchr(err, '\0', errlen);
  FUZZ_CHECK(nul != NULL, "error text not NUL-terminated");
  FUZZ_CHECK(nul != err, "empty error text");
}

void fuzz_check_err(const char *err, size_t errlen) {
  fuzz_check_err_text(err, errlen);
  FUZZ_CHECK(strchr(err, '\n') == NULL, "error text spans lines");
}

enum { JUNK = 64 }; /* more than DECODE_WIRE_MAX: the fast path's threshold */

/* Framed: the decoder found the datum's end (decoded, or a bad value). */
static int framed(int rc) {
  return rc == 0 || rc == PM_DECODE_BAD_VALUE;
}

static void check_rc(int rc) {
  FUZZ_CHECK(rc == 0 || rc == PM_DECODE_LOST || rc == PM_DECODE_BAD_VALUE,
             "pm_decode returned an undocumented value");
}

size_t fuzz_check_decode(const pm_plan *plan, const uint8_t *datum, size_t len) {
  pm_record r1, r2, r3;
  memset(&r1, 0, sizeof r1);
  const uint8_t *p = datum;
  int rc1 = pm_decode(plan, &p, datum + len, &r1);
  check_rc(rc1);
  size_t used = 0;
  if (framed(rc1)) {
    FUZZ_CHECK(p > datum && p <= datum + len, "pm_decode moved outside [pos, end] or not at all");
    used = (size_t)(p - datum);
  }
  if (rc1 == 0)
    fuzz_check_record(&r1);
  int rce = pm_decode_exact(plan, datum, len, &r2);
  check_rc(rce);
  FUZZ_CHECK(rce == (framed(rc1) && used == len ? rc1 : PM_DECODE_LOST),
             "pm_decode_exact disagrees with pm_decode on the whole input");
  if (rce == 0)
    FUZZ_CHECK(memcmp(&r1, &r2, sizeof r1) == 0, "pm_decode_exact record differs");
  if (framed(rc1) && used < len) {
    FUZZ_CHECK(pm_decode_exact(plan, datum, used, &r2) == rc1,
               "pm_decode_exact disagrees with pm_decode on the datum it consumed");
    if (rc1 == 0)
      FUZZ_CHECK(memcmp(&r1, &r2, sizeof r1) == 0, "pm_decode_exact record differs on the datum");
  }

  static const uint8_t fills[] = {0x00, 0xff, 0x02, 0x81};
  size_t base = framed(rc1) ? used : len;
  uint8_t *buf = malloc(base + JUNK);
  FUZZ_CHECK(buf != NULL, "out of memory");
  for (size_t f = 0; f < sizeof fills; f++) {
    if (base)
      memcpy(buf, datum, base);
    memset(buf + base, fills[f], JUNK);
    memset(&r3, 0, sizeof r3);
    p = buf;
    int rc3 = pm_decode(plan, &p, buf + base + JUNK, &r3);
    check_rc(rc3);
    if (framed(rc3))
      FUZZ_CHECK(p > buf && p <= buf + base + JUNK, "pm_decode moved outside [pos, end]");
    if (rc3 == 0)
      fuzz_check_record(&r3);
    if (framed(rc1)) {
      FUZZ_CHECK(rc3 == rc1, "a datum followed by junk decodes with another result");
      FUZZ_CHECK((size_t)(p - buf) == used, "a datum followed by junk consumes a different length");
      if (rc1 == 0)
        FUZZ_CHECK(memcmp(&r1, &r3, sizeof r1) == 0,
                   "a datum followed by junk decodes differently");
    } else if (framed(rc3)) {
      FUZZ_CHECK((size_t)(p - buf) > len,
                 "bytes that cannot be framed frame (within themselves) when junk follows");
    }
  }
  free(buf);
  return used;
}

const char *fuzz_file_with(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("regstream-fuzz", MFD_CLOEXEC);
    FUZZ_CHECK(fd >= 0, "memfd_create failed");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  FUZZ_CHECK(ftruncate(fd, 0) == 0, "ftruncate failed");
  size_t done = 0;
  while (done < size) {
    ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
    FUZZ_CHECK(n > 0, "pwrite to the memfd failed");
    done += (size_t)n;
  }
  return path;
}

static char scratch[256];

static void scratch_remove(void) {
  DIR *d = opendir(scratch);
  if (d) {
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(p, sizeof p, "%s/%s", scratch, e->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(scratch);
}

const char *fuzz_scratch_dir(void) {
  if (scratch[0])
    return scratch;
  struct stat st;
  const char *base = "/dev/shm"; /* tmpfs: the sinks' fsync costs nothing there */
  if (stat(base, &st) != 0 || !S_ISDIR(st.st_mode) || access(base, W_OK) != 0) {
    base = getenv("TMPDIR");
    if (!base || !*base)
      base = "/tmp";
  }
  snprintf(scratch, sizeof scratch, "%s/regstream-fuzz-XXXXXX", base);
  FUZZ_CHECK(mkdtemp(scratch) != NULL, "cannot make a scratch directory");
  atexit(scratch_remove);
  return scratch;
}

const char *fuzz_scratch_path(const char *name, char *buf, size_t buflen) {
  snprintf(buf, buflen, "%s/%s", fuzz_scratch_dir(), name);
  return buf;
}

char *fuzz_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 4096, n = 0;
  char *text = malloc(cap);
  while (text) {
    if (n + 1 >= cap) {
      char *bigger = realloc(text, cap * 2);
      if (!bigger) {
        free(text);
        text = NULL;
        break;
      }
      text = bigger;
      cap *= 2;
    }
    size_t got = fread(text + n, 1, cap - n - 1, f);
    n += got;
    if (got == 0)
      break;
  }
  fclose(f);
  if (text) {
    text[n] = '\0';
    *len = n;
  }
  return text;
}
