/* disclosure_rows.c — test helper for tests/postgres_sink.sh: reads an exact
 * rollup CSV (SPEC §4) on stdin and prints, per data row, what
 * core/disclosure.h says under --min-cell N: "KEY withheld", or "KEY" and
 * the names of the suppressed columns (disclosure_mask), space-separated.
 *
 *   disclosure_rows N <ROLLUP.csv */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/disclosure.h"

int main(int argc, char **argv) {
  if (argc != 2)
    return 2;
  uint32_t n = (uint32_t)strtoul(argv[1], NULL, 10);
  char line[1024];
  if (!fgets(line, sizeof line, stdin))
    return 1;
  while (fgets(line, sizeof line, stdin)) {
    char *save = NULL, *f[3];
    f[0] = strtok_r(line, ",\n", &save);
    f[1] = strtok_r(NULL, ",\n", &save);
    f[2] = strtok_r(NULL, ",\n", &save);
    uint32_t counts[ROLLUP_COLUMNS];
    for (int c = 0; c < ROLLUP_COLUMNS; c++) {
      char *t = strtok_r(NULL, ",\n", &save);
      if (!f[2] || !t)
        return 1;
      counts[c] = (uint32_t)strtoul(t, NULL, 10);
    }
    printf("%s,%s,%s", f[0], f[1], f[2]);
    if (disclosure_withheld(counts, n))
      printf(" withheld");
    else {
      uint32_t mask = disclosure_mask(counts, n);
      for (int c = 0; c < ROLLUP_COLUMNS; c++)
        if (mask & (1u << c))
          printf(" %s", rollup_column_names[c]);
    }
    printf("\n");
  }
  return 0;
}
