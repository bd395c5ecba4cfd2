/* fuzz_common.h — owned by the fuzzing work (tests/fuzz/): what the libFuzzer
 * harnesses share: a check that aborts (so a broken invariant is a crash for
 * libFuzzer and for the plain corpus driver alike, NDEBUG or not), the
 * invariants of a decoded pm_record and of pm_decode itself, an in-memory
 * file for APIs that take a path, and a private scratch directory. */
#ifndef REGSTREAM_FUZZ_COMMON_H
#define REGSTREAM_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "avro/decode.h"
#include "core/record.h"

/* The libFuzzer entry point every harness defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

void fuzz_fail(const char *file, int line, const char *what, const char *detail);
#define FUZZ_CHECK(cond, detail)                                                                   \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      fuzz_fail(__FILE__, __LINE__, #cond, (detail));                                              \
  } while (0)

/* A successful decode's record: enums in range, only the six defined flag
 * bits, reserved 0. */
void fuzz_check_record(const pm_record *rec);

/* An error text an API promised: NUL-terminated within errlen, one line,
 * not empty. */
void fuzz_check_err(const char *err, size_t errlen);
/* The same without the one-line rule: for errors that quote the caller's own
 * words verbatim (a command-line argument may hold a newline). */
void fuzz_check_err_text(const char *err, size_t errlen);

/* Runs pm_decode / pm_decode_exact on [datum, datum+len) and checks that
 * they agree with each other and with pm_decode on the same bytes followed
 * by junk (which for the reader schema also switches to the fast path):
 * results are 0, PM_DECODE_LOST or PM_DECODE_BAD_VALUE; a framed datum (0 or
 * BAD_VALUE) followed by junk gives the same result, consumes the same bytes
 * and (when 0) the same record; bytes that cannot be framed only frame with
 * junk appended by reading into the junk. datum must be an exactly-sized
 * allocation for AddressSanitizer to see reads past len. Returns the bytes
 * the datum consumed, or 0 when it cannot be framed. */
size_t fuzz_check_decode(const pm_plan *plan, const uint8_t *datum, size_t len);

/* A path (/proc/self/fd/N of a memfd) whose file holds exactly [data,
 * data+size); valid until the next call. Aborts when it cannot be made. */
const char *fuzz_file_with(const uint8_t *data, size_t size);

/* A private scratch directory (made once, removed with its files at exit),
 * and a path name inside it. */
const char *fuzz_scratch_dir(void);
const char *fuzz_scratch_path(const char *name, char *buf, size_t buflen);

/* Contents of a file (malloc'd, NUL-terminated, *len without the NUL), or
 * NULL when it cannot be read. */
char *fuzz_slurp(const char *path, size_t *len);

#endif
