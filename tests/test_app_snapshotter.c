/* test_app_snapshotter.c — the background snapshot writer
 * (processor/snapshotter.c): images from several threads all end up on disk
 * (or superseded by a newer one of their shard), the gate runs before every
 * write and can drop an image, forget drops a shard's queued images, and a
 * write failure is reported by check and drain. Run under ThreadSanitizer
 * too (tests/run-all.sh). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "state/shard.h"
#include "state/snapshot.h"
#include "state/snapshotter.h"
#include "state/store.h"

static rules_config rules;
static char base[256];

static void make_shard(shard *s, int persons) {
  assert_int_equal(shard_init(s, &rules, 0), 0);
  for (int i = 1; i <= persons; i++) {
    pm_record rec;
    memset(&rec, 0, sizeof rec);
    rec.person_id = i * 7;
    rec.period = 202301;
    rec.municipality = 101;
    rec.visitation = (uint8_t)(i % VISITATION_COUNT);
    rec.paid_hours = (float)(i % 160);
    assert_true(shard_apply(s, &rec, personmap_hash(rec.person_id)) >= 0);
  }
}

static snapshot_image *image_of(const shard *s, const char *id, int64_t position) {
  snapshot_meta m;
  memset(&m, 0, sizeof m);
  m.fingerprint = 42;
  snprintf(m.shard_id, sizeof m.shard_id, "%s", id);
  m.position = position;
  snapshot_image *img = snapshot_capture(s, &m);
  assert_non_null(img);
  return img;
}

/* The newest position of shard id in dir, via the loader; -1 when none. */
static int64_t newest(const char *dir, const char *id) {
  shard s;
  snapshot_meta m;
  char err[512];
  assert_int_equal(shard_init(&s, &rules, 0), 0);
  int rc = snapshot_store_load_latest(dir, id, 42, &s, &m, err, sizeof err);
  shard_free(&s);
  assert_true(rc >= 0);
  return rc == 1 ? m.position : -1;
}

typedef struct submitter {
  snapshotter *sn;
  const shard *state;
  char id[32];
} submitter;

static void *submit_many(void *arg) {
  submitter *su = arg;
  for (int64_t pos = 1; pos <= 40; pos++)
    snapshotter_submit(su->sn, image_of(su->state, su->id, pos));
  return NULL;
}

static atomic_int gate_calls;
static int gate_open(void *ctx) {
  (void)ctx;
  atomic_fetch_add(&gate_calls, 1);
  return 0;
}

static void threads_submit_and_every_shard_ends_newest(void **state) {
  (void)state;
  char dir[512];
  snprintf(dir, sizeof dir, "%s/many", base);
  shard s;
  make_shard(&s, 200);
  snapshotter *sn = snapshotter_start(dir, gate_open, NULL, NULL);
  assert_non_null(sn);
  submitter su[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    su[i] = (submitter){sn, &s, ""};
    snprintf(su[i].id, sizeof su[i].id, "kafka.t.%d", i);
    assert_int_equal(pthread_create(&t[i], NULL, submit_many, &su[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  char err[512];
  assert_int_equal(snapshotter_drain(sn, err, sizeof err), 0);
  snapshotter_stats st = snapshotter_get_stats(sn);
  /* Every image was written or replaced by a newer one of its shard. */
  assert_int_equal(st.written + st.replaced, 4 * 40);
  assert_int_equal(atomic_load(&gate_calls), (int)st.written);
  for (int i = 0; i < 4; i++)
    assert_int_equal(newest(dir, su[i].id), 40);
  snapshotter_stop(sn);
  shard_free(&s);
}

static int gate_closed(void *ctx) {
  (void)ctx;
  return -1;
}

static void a_closed_gate_writes_nothing(void **state) {
  (void)state;
  char dir[512], err[512];
  snprintf(dir, sizeof dir, "%s/gated", base);
  shard s;
  make_shard(&s, 50);
  snapshotter *sn = snapshotter_start(dir, gate_closed, NULL, NULL);
  assert_non_null(sn);
  snapshotter_submit(sn, image_of(&s, "kafka.g.0", 5));
  assert_int_equal(snapshotter_drain(sn, err, sizeof err), 0);
  assert_int_equal(snapshotter_get_stats(sn).gated, 1);
  assert_int_equal(snapshotter_get_stats(sn).written, 0);
  assert_int_equal(newest(dir, "kafka.g.0"), -1);
  snapshotter_stop(sn);
  shard_free(&s);
}

static void forget_drops_a_shards_queued_images(void **state) {
  (void)state;
  char dir[512], err[512];
  snprintf(dir, sizeof dir, "%s/forget", base);
  shard s;
  make_shard(&s, 50);
  snapshotter *sn = snapshotter_start(dir, NULL, NULL, NULL);
  assert_non_null(sn);
  snapshotter_submit(sn, image_of(&s, "kafka.f.1", 7));
  snapshotter_forget(sn, "kafka.f.1");
  assert_int_equal(snapshotter_drain(sn, err, sizeof err), 0);
  /* Written before the forget, or dropped by it: never half of either. */
  int64_t n = newest(dir, "kafka.f.1");
  assert_true(n == -1 || n == 7);
  snapshotter_stop(sn);
  shard_free(&s);
}

static void a_write_failure_is_reported(void **state) {
  (void)state;
  char file[512], dir[600], err[512];
  snprintf(file, sizeof file, "%s/not-a-dir", base);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fclose(f);
  snprintf(dir, sizeof dir, "%s/below", file); /* cannot be made */
  shard s;
  make_shard(&s, 10);
  snapshotter *sn = snapshotter_start(dir, NULL, NULL, NULL);
  assert_non_null(sn);
  snapshotter_submit(sn, image_of(&s, "kafka.e.0", 3));
  assert_int_equal(snapshotter_drain(sn, err, sizeof err), -1);
  assert_true(strlen(err) > 0);
  err[0] = 0;
  assert_int_equal(snapshotter_check(sn, err, sizeof err), -1);
  assert_true(strlen(err) > 0);
  snapshotter_stop(sn);
  shard_free(&s);
}

int main(void) {
  rules_config_default(&rules);
  char why[200];
  if (rules_config_prepare(&rules, why, sizeof why) < 0)
    return 1;
  snprintf(base, sizeof base, "%s/test_app_snapshotter.%d", REGSTREAM_BINARY_DIR, (int)getpid());
  mkdir(base, 0755);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(threads_submit_and_every_shard_ends_newest),
      cmocka_unit_test(a_closed_gate_writes_nothing),
      cmocka_unit_test(forget_drops_a_shards_queued_images),
      cmocka_unit_test(a_write_failure_is_reported),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", base);
  return rc;
}
