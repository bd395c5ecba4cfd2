/* test_framing.c — Kafka value framing (processor/source/framing.c) and
 * writer schemas by id (processor/source/schema_registry.c): plain and
 * Confluent frames, wrong magic, unknown ids, short frames, evolved writer
 * schemas from a local <id>.avsc directory (an added field with a default,
 * visitation removed), caching of known and unknown ids, lookups from several
 * threads, and the REST path against a canned HTTP server on 127.0.0.1
 * (found, 404 with 40403, 500, a bad answer, and a request that times out);
 * tests/test_app_registry.c has the outage classes, TLS and credentials. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "source/framing.h"

/* ---- records and writer schemas ---- */

static pm_record sample(int64_t person) {
  pm_record r = {.person_id = person,
                 .period = 202302,
                 .municipality = 751,
                 .paid_hours = 37.5f,
                 .visitation = VISITATION_JOBPARAT,
                 .benefit = BENEFIT_DAGPENGE,
                 .flags = PM_ENROLLED | PM_FLEXJOB};
  return r;
}

static void assert_record_equal(const pm_record *a, const pm_record *b) {
  assert_true(a->person_id == b->person_id);
  assert_int_equal(a->period, b->period);
  assert_int_equal(a->municipality, b->municipality);
  assert_true(a->paid_hours == b->paid_hours);
  assert_int_equal(a->visitation, b->visitation);
  assert_int_equal(a->benefit, b->benefit);
  assert_int_equal(a->flags, b->flags);
}

static uint8_t *put_long(uint8_t *p, int64_t v) {
  uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
  while (z > 0x7f) {
    *p++ = (uint8_t)(z | 0x80);
    z >>= 7;
  }
  *p++ = (uint8_t)z;
  return p;
}

/* The reader schema with a field appended ("note": string, default "") or
 * with visitation removed. Returned text is malloc'ed. */
static char *evolved_schema(int add_note, int drop_visitation) {
  json_error_t jerr;
  json_t *root = json_loads(pm_reader_schema_json, 0, &jerr);
  assert_non_null(root);
  json_t *fields = json_object_get(root, "fields");
  if (drop_visitation)
    for (size_t i = 0; i < json_array_size(fields); i++)
      if (!strcmp(json_string_value(json_object_get(json_array_get(fields, i), "name")),
                  "visitation"))
        json_array_remove(fields, i);
  if (add_note)
    json_array_append_new(
        fields, json_pack("{s:s, s:s, s:s}", "name", "note", "type", "string", "default", ""));
  char *text = json_dumps(root, JSON_COMPACT);
  json_decref(root);
  return text;
}

/* Bytes of r in the writer schema without visitation. */
static size_t encode_without_visitation(const pm_record *r, uint8_t *buf) {
  uint8_t full[PM_ENCODED_MAX];
  size_t n = pm_encode(r, full);
  uint8_t *p = put_long(buf, r->person_id);
  p = put_long(p, r->period);
  p = put_long(p, r->municipality);
  size_t head = (size_t)(p - buf);
  /* visitation is one byte (index < 64) right after the three varints */
  memcpy(p, full + head + 1, n - head - 1);
  return n - 1;
}

/* ---- a temporary schema directory ---- */

static char dir_path[256];

static void write_file(const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir_path, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int dir_setup(void **state) {
  (void)state;
  snprintf(dir_path, sizeof dir_path, "/tmp/test_framing.XXXXXX");
  if (!mkdtemp(dir_path))
    return -1;
  write_file("1.avsc", pm_reader_schema_json);
  char *note = evolved_schema(1, 0), *novis = evolved_schema(0, 1);
  write_file("2.avsc", note);
  write_file("3.avsc", novis);
  free(note);
  free(novis);
  write_file("4.avsc", "{\"type\": \"int\"}");
  write_file("5.avsc", "{ not json");
  return 0;
}

static int dir_teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir_path);
  return system(cmd) == 0 ? 0 : -1;
}

static size_t confluent(uint32_t id, const uint8_t *datum, size_t n, uint8_t *out) {
  framing_confluent_header(id, out);
  memcpy(out + FRAMING_CONFLUENT_HEADER, datum, n);
  return n + FRAMING_CONFLUENT_HEADER;
}

/* ---- tests ---- */

static void test_plain(void **state) {
  (void)state;
  char err[256];
  pm_plan *plan =
      pm_plan_from_json(pm_reader_schema_json, strlen(pm_reader_schema_json), err, sizeof err);
  assert_non_null(plan);
  framing f = {.mode = FRAMING_PLAIN, .plan = plan};
  pm_record r = sample(123456789), out;
  uint8_t buf[PM_ENCODED_MAX + 8];
  size_t n = pm_encode(&r, buf);
  assert_int_equal(framing_decode(&f, buf, n, &out, NULL), REASON_OK);
  assert_record_equal(&r, &out);
  for (size_t cut = 0; cut < n; cut++)
    assert_int_equal(framing_decode(&f, buf, cut, &out, NULL), REASON_UNDECODABLE);
  buf[n] = 0;
  assert_int_equal(framing_decode(&f, buf, n + 1, &out, NULL), REASON_UNDECODABLE);
  assert_int_equal(framing_decode(&f, NULL, 0, &out, NULL), REASON_UNDECODABLE);
  /* a Confluent frame read as plain is not one datum */
  uint8_t framed[PM_ENCODED_MAX + 8];
  size_t fn = confluent(1, buf, n, framed);
  assert_int_equal(framing_decode(&f, framed, fn, &out, NULL), REASON_UNDECODABLE);
  pm_plan_free(plan);
}

static void test_plain_plan_from_file(void **state) {
  (void)state;
  char err[512], path[512];
  snprintf(path, sizeof path, "%s/3.avsc", dir_path);
  pm_plan *plan = framing_plan_from_file(path, err, sizeof err);
  assert_non_null(plan);
  assert_false(pm_plan_is_identity(plan));
  framing f = {.mode = FRAMING_PLAIN, .plan = plan};
  pm_record r = sample(42), out;
  uint8_t buf[PM_ENCODED_MAX];
  size_t n = encode_without_visitation(&r, buf);
  assert_int_equal(framing_decode(&f, buf, n, &out, NULL), REASON_OK);
  r.visitation = VISITATION_UNKNOWN;
  assert_record_equal(&r, &out);
  pm_plan_free(plan);
  assert_null(framing_plan_from_file("/nonexistent/x.avsc", err, sizeof err));
  assert_non_null(strstr(err, "/nonexistent/x.avsc"));
  snprintf(path, sizeof path, "%s/5.avsc", dir_path);
  assert_null(framing_plan_from_file(path, err, sizeof err));
}

static void test_confluent_dir(void **state) {
  (void)state;
  char err[512];
  schema_source_options opts = {.unknown_ttl_ms = 60000};
  schema_source *src = schema_source_open_dir(dir_path, &opts, err, sizeof err);
  assert_non_null(src);
  framing f = {.mode = FRAMING_CONFLUENT, .schemas = src};
  framing_result info;
  pm_record r = sample(987654321012LL), out;
  uint8_t datum[PM_ENCODED_MAX + 16], frame[PM_ENCODED_MAX + 32];

  /* id 1: the reader schema */
  size_t n = pm_encode(&r, datum);
  size_t fn = confluent(1, datum, n, frame);
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_OK);
  assert_int_equal(info.schema_id, 1);
  assert_record_equal(&r, &out);
  /* trailing and truncated datum bytes */
  frame[fn] = 0;
  assert_int_equal(framing_decode(&f, frame, fn + 1, &out, NULL), REASON_UNDECODABLE);
  assert_int_equal(framing_decode(&f, frame, fn - 1, &out, NULL), REASON_UNDECODABLE);
  assert_int_equal(framing_decode(&f, frame, 5, &out, NULL), REASON_UNDECODABLE);

  /* id 2: an added field with a default, which the reader skips */
  n = pm_encode(&r, datum);
  datum[n++] = 4; /* string of 2 */
  datum[n++] = 'h';
  datum[n++] = 'i';
  fn = confluent(2, datum, n, frame);
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_OK);
  assert_int_equal(info.schema_id, 2);
  assert_record_equal(&r, &out);
  /* the same bytes without the string are truncated for id 2 */
  fn = confluent(2, datum, n - 3, frame);
  assert_int_equal(framing_decode(&f, frame, fn, &out, NULL), REASON_UNDECODABLE);

  /* id 3: visitation removed: reader default UNKNOWN */
  n = encode_without_visitation(&r, datum);
  fn = confluent(3, datum, n, frame);
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_OK);
  pm_record expect = r;
  expect.visitation = VISITATION_UNKNOWN;
  assert_record_equal(&expect, &out);

  /* wrong magic byte, even when short */
  n = pm_encode(&r, datum);
  fn = confluent(1, datum, n, frame);
  frame[0] = 1;
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_SCHEMA);
  assert_int_equal(info.schema, SCHEMA_UNKNOWN);
  assert_int_equal(framing_decode(&f, frame, 2, &out, NULL), REASON_SCHEMA);
  /* short frames */
  frame[0] = 0;
  for (size_t cut = 0; cut < FRAMING_CONFLUENT_HEADER; cut++)
    assert_int_equal(framing_decode(&f, frame, cut, &out, NULL), REASON_UNDECODABLE);

  /* unknown id: schema, asked once, then remembered */
  uint64_t before = schema_source_fetches(src);
  fn = confluent(99, datum, n, frame);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_SCHEMA);
    assert_int_equal(info.schema, SCHEMA_UNKNOWN);
    assert_int_equal(info.schema_id, 99);
  }
  assert_int_equal(schema_source_fetches(src), before + 1);
  schema_status st;
  assert_null(schema_source_lookup(src, 99, &st, err, sizeof err));
  assert_non_null(strstr(err, "99.avsc"));
  /* a schema that is not a PersonMonth, and one that does not parse */
  fn = confluent(4, datum, n, frame);
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_SCHEMA);
  assert_int_equal(info.schema, SCHEMA_INVALID);
  fn = confluent(5, datum, n, frame);
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_SCHEMA);
  assert_int_equal(info.schema, SCHEMA_INVALID);
  /* ids 1..3 were each fetched once, whatever the number of lookups */
  before = schema_source_fetches(src);
  for (int i = 0; i < 1000; i++)
    assert_non_null(schema_source_lookup(src, (uint32_t)(1 + i % 3), &st, NULL, 0));
  assert_int_equal(schema_source_fetches(src), before);
  schema_source_free(src);

  assert_null(schema_source_open_dir("/nonexistent-dir", NULL, err, sizeof err));
  assert_non_null(strstr(err, "/nonexistent-dir"));
}

/* Several threads look up the same ids (known, evolved, unknown) at once. */
typedef struct lookup_job {
  schema_source *src;
  atomic_int *failures;
} lookup_job;

static void *lookup_thread(void *arg) {
  lookup_job *job = arg;
  framing f = {.mode = FRAMING_CONFLUENT, .schemas = job->src};
  pm_record r = sample(7), out;
  uint8_t datum[PM_ENCODED_MAX], frame[PM_ENCODED_MAX + 8];
  size_t n = pm_encode(&r, datum);
  for (int i = 0; i < 20000; i++) {
    uint32_t id = (uint32_t)(i % 4 == 3 ? 1000 + i % 7 : 1);
    size_t fn = confluent(id, datum, n, frame);
    reason got = framing_decode(&f, frame, fn, &out, NULL);
    if (got != (id == 1 ? REASON_OK : REASON_SCHEMA))
      atomic_fetch_add(job->failures, 1);
  }
  return NULL;
}

static void test_threads(void **state) {
  (void)state;
  char err[256];
  schema_source *src = schema_source_open_dir(dir_path, NULL, err, sizeof err);
  assert_non_null(src);
  atomic_int failures = 0;
  lookup_job job = {src, &failures};
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, lookup_thread, &job), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(atomic_load(&failures), 0);
  /* id 1 and the 7 unknown ids, once each */
  assert_int_equal(schema_source_fetches(src), 8);
  schema_source_free(src);
}

/* ---- a canned Schema Registry on 127.0.0.1 ---- */

typedef struct http_server {
  int fd;
  int port;
  atomic_int stop;
  atomic_int requests[16]; /* per id < 16 */
  pthread_t thread;
} http_server;

static void send_all(int fd, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n <= 0)
      return;
    data += n;
    len -= (size_t)n;
  }
}

static void respond(int fd, int status, const char *body) {
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d X\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                   status, strlen(body));
  send_all(fd, head, (size_t)n);
  send_all(fd, body, strlen(body));
}

static void serve_one(http_server *s, int fd) {
  char req[4096] = "";
  size_t len = 0;
  while (len < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
    ssize_t n = recv(fd, req + len, sizeof req - 1 - len, 0);
    if (n <= 0)
      return;
    len += (size_t)n;
    req[len] = '\0';
  }
  unsigned id = 0;
  if (sscanf(req, "GET /registry/schemas/ids/%u ", &id) != 1) {
    respond(fd, 400, "{}");
    return;
  }
  if (id < 16)
    atomic_fetch_add(&s->requests[id], 1);
  switch (id) {
  case 1: {
    json_t *answer = json_pack("{s:s}", "schema", pm_reader_schema_json);
    char *text = json_dumps(answer, JSON_COMPACT);
    respond(fd, 200, text);
    free(text);
    json_decref(answer);
    break;
  }
  case 2: {
    char *note = evolved_schema(1, 0);
    json_t *answer = json_pack("{s:s, s:s}", "schemaType", "AVRO", "schema", note);
    char *text = json_dumps(answer, JSON_COMPACT);
    respond(fd, 200, text);
    free(text);
    free(note);
    json_decref(answer);
    break;
  }
  case 8: /* slow: longer than the client's timeout */
    usleep(700 * 1000);
    respond(fd, 200, "{}");
    break;
  case 9:
    respond(fd, 500, "{\"error_code\":50001,\"message\":\"boom\"}");
    break;
  case 10:
    respond(fd, 200, "{\"not_schema\": 1}");
    break;
  case 11:
    respond(fd, 200, "{\"schemaType\":\"PROTOBUF\",\"schema\":\"syntax = \\\"proto3\\\";\"}");
    break;
  default:
    respond(fd, 404, "{\"error_code\":40403,\"message\":\"Schema not found\"}");
  }
}

static void *server_thread(void *arg) {
  http_server *s = arg;
  while (!atomic_load(&s->stop)) {
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, 50) <= 0)
      continue;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
      continue;
    serve_one(s, c);
    close(c);
  }
  return NULL;
}

static http_server *server_start(void) {
  http_server *s = calloc(1, sizeof *s);
  assert_non_null(s);
  s->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s->fd >= 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s->fd, (struct sockaddr *)&addr, sizeof addr), 0);
  assert_int_equal(listen(s->fd, 16), 0);
  socklen_t alen = sizeof addr;
  assert_int_equal(getsockname(s->fd, (struct sockaddr *)&addr, &alen), 0);
  s->port = ntohs(addr.sin_port);
  assert_int_equal(pthread_create(&s->thread, NULL, server_thread, s), 0);
  return s;
}

static void server_stop(http_server *s) {
  atomic_store(&s->stop, 1);
  pthread_join(s->thread, NULL);
  close(s->fd);
  free(s);
}

static void test_registry_rest(void **state) {
  (void)state;
  http_server *srv = server_start();
  char url[128], err[512];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/registry/", srv->port);
  schema_source_options opts = {.timeout_ms = 300, .unknown_ttl_ms = 60000, .retry_ms = 200};
  schema_source *src = schema_source_open_registry(url, &opts, err, sizeof err);
  assert_non_null(src);
  framing f = {.mode = FRAMING_CONFLUENT, .schemas = src};
  framing_result info;
  pm_record r = sample(31337), out;
  uint8_t datum[PM_ENCODED_MAX + 8], frame[PM_ENCODED_MAX + 16];
  size_t n = pm_encode(&r, datum);

  /* found, fetched once */
  size_t fn = confluent(1, datum, n, frame);
  for (int i = 0; i < 50; i++) {
    assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_OK);
    assert_record_equal(&r, &out);
  }
  assert_int_equal(atomic_load(&srv->requests[1]), 1);
  /* evolved, with schemaType AVRO */
  datum[n] = 0; /* empty string for "note" */
  fn = confluent(2, datum, n + 1, frame);
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_OK);
  assert_record_equal(&r, &out);

  /* 404: unknown, remembered */
  schema_status st;
  fn = confluent(7, datum, n, frame);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(framing_decode(&f, frame, fn, &out, &info), REASON_SCHEMA);
    assert_int_equal(info.schema, SCHEMA_UNKNOWN);
  }
  assert_int_equal(atomic_load(&srv->requests[7]), 1);
  assert_null(schema_source_lookup(src, 7, &st, err, sizeof err));
  assert_non_null(strstr(err, "not found"));

  /* 500: unavailable (not bad data: try later), retried only after retry_ms */
  fn = confluent(9, datum, n, frame);
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), FRAMING_RETRY);
  assert_int_equal(info.schema, SCHEMA_UNAVAILABLE);
  assert_int_equal(info.schema_id, 9);
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), FRAMING_RETRY);
  assert_int_equal(atomic_load(&srv->requests[9]), 1);
  usleep(300 * 1000);
  assert_int_equal(framing_decode(&f, frame, fn, &out, &info), FRAMING_RETRY);
  assert_int_equal(atomic_load(&srv->requests[9]), 2);

  /* a 200 that is not a registry's answer says nothing about the id; one
   * that is not Avro does */
  assert_null(schema_source_lookup(src, 10, &st, err, sizeof err));
  assert_int_equal(st, SCHEMA_UNAVAILABLE);
  assert_null(schema_source_lookup(src, 11, &st, err, sizeof err));
  assert_int_equal(st, SCHEMA_INVALID);

  /* a registry slower than the timeout */
  assert_null(schema_source_lookup(src, 8, &st, err, sizeof err));
  assert_int_equal(st, SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "schema registry"));

  schema_source_free(src);
  server_stop(srv);

  /* nobody listening: unavailable, quickly */
  schema_source *dead = schema_source_open_registry(url, &opts, err, sizeof err);
  assert_non_null(dead);
  assert_null(schema_source_lookup(dead, 1, &st, err, sizeof err));
  assert_int_equal(st, SCHEMA_UNAVAILABLE);
  schema_source_free(dead);
  assert_null(schema_source_open_registry("ftp://x", NULL, err, sizeof err));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain),         cmocka_unit_test(test_plain_plan_from_file),
      cmocka_unit_test(test_confluent_dir), cmocka_unit_test(test_threads),
      cmocka_unit_test(test_registry_rest),
  };
  return cmocka_run_group_tests(tests, dir_setup, dir_teardown);
}
