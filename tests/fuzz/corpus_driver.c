/* corpus_driver.c — owned by the fuzzing work (tests/fuzz/): a main() that
 * replays a corpus through a harness without libFuzzer, so that every
 * harness also runs as an ordinary ctest (fuzz_corpus_<name>) in any build,
 * gcc or clang, plain or sanitized. Arguments: files or directories (their
 * regular files, in name order). Each file is read into an exactly-sized
 * buffer and passed to LLVMFuzzerTestOneInput; a broken invariant aborts.
 * Exit 0 after all, 1 when an argument cannot be read or nothing was run. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "corpus_driver: cannot open %s\n", path);
    return -1;
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      fclose(f);
      fprintf(stderr, "corpus_driver: out of memory reading %s\n", path);
      return -1;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0)
      break;
    if (n == cap) {
      uint8_t *bigger = realloc(buf, cap *= 2);
      if (!bigger)
        free(buf);
      buf = bigger;
    }
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    fprintf(stderr, "corpus_driver: read error on %s\n", path);
    return -1;
  }
  /* exactly sized, as libFuzzer passes inputs */
  uint8_t *exact = malloc(n ? n : 1);
  if (!exact) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, n);
  free(buf);
  fprintf(stderr, "corpus_driver: %s (%zu bytes)\n", path, n);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, int *ran) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "corpus_driver: cannot open directory %s\n", dir);
    return -1;
  }
  char **names = NULL;
  size_t count = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    if (count == cap) {
      char **more = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
      if (!more)
        break;
      names = more;
    }
    names[count++] = strdup(e->d_name);
  }
  closedir(d);
  if (count)
    qsort(names, count, sizeof *names, by_name);
  int rc = 0;
  for (size_t i = 0; i < count; i++) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
      if (run_file(path) < 0)
        rc = -1;
      else
        (*ran)++;
    }
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize)
    LLVMFuzzerInitialize(&argc, &argv);
  int ran = 0, rc = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      if (run_dir(argv[i], &ran) < 0)
        rc = 1;
    } else if (run_file(argv[i]) < 0) {
      rc = 1;
    } else {
      ran++;
    }
  }
  printf("corpus_driver: %d input(s) ran clean\n", ran);
  if (ran == 0) {
    fprintf(stderr, "corpus_driver: no inputs\n");
    rc = 1;
  }
  return rc;
}
