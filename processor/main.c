/* main.c — the regstream command line (placeholder while the pipeline is built). */
#include <stdio.h>
int main(void) {
  fprintf(stderr, "regstream: not built yet\n");
  return 2;
}
