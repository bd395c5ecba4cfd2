/* test_app_registry.c — the schema registry client (processor/source/
 * schema_registry.c, framing.c) against tests/fake_registry.py, a real HTTP
 * and HTTPS server in a child process: which answers are bad data (a 404
 * with error code 40403) and which are outages (a 404 without it, 401, 403,
 * 500, 503, a timeout, connection refused, TLS refused), framing's
 * FRAMING_RETRY for the latter; caching (a transient failure is retried and
 * never remembered as unknown, a found id is never fetched again); TLS with
 * a test CA and a client certificate with an encrypted key, basic auth from
 * the options and from the url, a bearer token; and no secret in any error
 * text. A schema directory: a missing <id>.avsc is unknown, an unreadable
 * one unavailable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "avro/schemas.h"
#include "source/framing.h"

#define USER_INFO "alice:S3cret-Pa55word"
#define TOKEN "tok-9f8e7d6c5b4a"
#define KEY_PASSWORD "K3y-Passphrase"

static char tmp[256];
static char schema_path[300];

typedef struct fake {
  pid_t pid;
  int port;
} fake;

/* Starts tests/fake_registry.py with args (NULL-terminated), reads its port. */
static fake fake_start(const char *first, ...) {
  const char *argv[40];
  int n = 0;
  argv[n++] = "python3";
  static char script[512];
  snprintf(script, sizeof script, "%s/tests/fake_registry.py", REGSTREAM_SOURCE_DIR);
  argv[n++] = script;
  static char schema_arg[400];
  snprintf(schema_arg, sizeof schema_arg, "1=%s", schema_path);
  argv[n++] = "--schema";
  argv[n++] = schema_arg;
  static char schema906[400];
  snprintf(schema906, sizeof schema906, "906=%s", schema_path);
  argv[n++] = "--schema";
  argv[n++] = schema906;
  va_list ap;
  va_start(ap, first);
  for (const char *a = first; a && n < 38; a = va_arg(ap, const char *))
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execvp("python3", (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  char line[32] = "";
  size_t len = 0;
  while (len < sizeof line - 1) {
    ssize_t r = read(fds[0], line + len, 1);
    if (r <= 0 || line[len] == '\n')
      break;
    len++;
  }
  line[len] = '\0';
  close(fds[0]);
  fake f = {pid, atoi(line)};
  assert_true(f.port > 0);
  return f;
}

static void fake_stop(fake f) {
  kill(f.pid, SIGTERM);
  waitpid(f.pid, NULL, 0);
}

static void assert_no_secret(const char *text) {
  const char *secrets[] = {"S3cret", "Pa55word", TOKEN, KEY_PASSWORD, "wrong-pw", "bad-token"};
  for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
    if (strstr(text, secrets[i])) {
      fail_msg("secret '%s' printed in: %s", secrets[i], text);
    }
}

/* Looks id up; returns its status, err filled; checks err for secrets. */
static schema_status look(schema_source *s, uint32_t id, char *err, size_t errlen) {
  schema_status st = SCHEMA_FOUND;
  err[0] = '\0';
  const pm_plan *plan = schema_source_lookup(s, id, &st, err, errlen);
  assert_true((plan != NULL) == (st == SCHEMA_FOUND));
  if (getenv("REGSTREAM_TEST_VERBOSE")) /* to read the messages */
    fprintf(stderr, "id %u: %s: %s\n", id, schema_status_name(st), err);
  assert_no_secret(err);
  return st;
}

static int run(const char *cmd) {
  char full[2048];
  snprintf(full, sizeof full, "cd %s && (%s) >/dev/null 2>&1", tmp, cmd);
  return system(full);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmp, sizeof tmp, "/tmp/test_app_registry.XXXXXX");
  if (!mkdtemp(tmp))
    return -1;
  snprintf(schema_path, sizeof schema_path, "%s/1.avsc", tmp);
  FILE *f = fopen(schema_path, "w");
  if (!f)
    return -1;
  fputs(pm_reader_schema_json, f);
  fclose(f);
  /* a test CA, a server certificate for 127.0.0.1, a client certificate
   * with a key encrypted under KEY_PASSWORD */
  const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1";
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "openssl req -x509 %s -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca && "
           "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' >san.ext && "
           "openssl req %s -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1 && "
           "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out server.pem -days 2 -extfile san.ext && "
           "openssl req %s -keyout client.key -passout pass:%s -out client.csr -subj /CN=client && "
           "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out client.pem -days 2 && "
           "openssl req -x509 %s -nodes -keyout other.key -out other.pem -days 2 -subj /CN=other",
           ec, ec, ec, KEY_PASSWORD, ec);
  return run(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  return system(cmd) == 0 ? 0 : -1;
}

static void in_tmp(char *out, size_t len, const char *name) {
  snprintf(out, len, "%s/%s", tmp, name);
}

/* ---- what each answer means ---- */

static void test_classification(void **state) {
  (void)state;
  fake f = fake_start("--canned", "--sleep", "1.5", NULL);
  char url[128], err[600];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", f.port);
  schema_source_options opts = {.timeout_ms = 600, .retry_ms = 150, .unknown_ttl_ms = 60000};
  schema_source *s = schema_source_open_registry(url, &opts, err, sizeof err);
  assert_non_null(s);

  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_FOUND);
  /* Confluent's "Schema not found": the one definite unknown */
  assert_int_equal(look(s, 77, err, sizeof err), SCHEMA_UNKNOWN);
  assert_non_null(strstr(err, "not found"));
  /* a 404 without error code 40403: a wrong path, not an unknown id */
  assert_int_equal(look(s, 900, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "HTTP 404"));
  assert_non_null(strstr(err, "40403"));
  assert_int_equal(look(s, 901, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "HTTP 401"));
  assert_non_null(strstr(err, "credentials"));
  assert_int_equal(look(s, 902, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "HTTP 403"));
  assert_int_equal(look(s, 903, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "HTTP 500"));
  assert_int_equal(look(s, 904, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "HTTP 503"));
  assert_non_null(strstr(err, url)); /* says which registry */
  /* slower than the client's timeout */
  assert_int_equal(look(s, 905, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "unavailable"));

  /* framing: bad data is a reason, an outage FRAMING_RETRY */
  framing fr = {.mode = FRAMING_CONFLUENT, .schemas = s};
  uint8_t frame[8] = {0};
  framing_result info;
  pm_record out;
  framing_confluent_header(77, frame);
  assert_int_equal(framing_decode(&fr, frame, sizeof frame, &out, &info), REASON_SCHEMA);
  assert_int_equal(info.schema, SCHEMA_UNKNOWN);
  static const uint32_t outages[] = {900, 901, 902, 903, 904, 905};
  for (size_t i = 0; i < sizeof outages / sizeof *outages; i++) {
    framing_confluent_header(outages[i], frame);
    assert_int_equal(framing_decode(&fr, frame, sizeof frame, &out, &info), FRAMING_RETRY);
    assert_int_equal(info.schema, SCHEMA_UNAVAILABLE);
    assert_int_equal(info.schema_id, outages[i]);
  }
  schema_source_free(s);
  fake_stop(f);

  /* nobody listening any more: connection refused */
  s = schema_source_open_registry(url, &opts, err, sizeof err);
  assert_non_null(s);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "unavailable"));
  schema_source_free(s);
}

/* ---- caching ---- */

static void test_caching(void **state) {
  (void)state;
  fake f = fake_start("--canned", NULL);
  char url[128], err[600];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", f.port);
  schema_source_options opts = {.timeout_ms = 2000, .retry_ms = 200, .unknown_ttl_ms = 60000};
  schema_source *s = schema_source_open_registry(url, &opts, err, sizeof err);
  assert_non_null(s);
  /* 906 answers 503 once, then its schema: the failure is retried (after
   * retry_ms), never taken for unknown */
  assert_int_equal(look(s, 906, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_int_equal(schema_source_fetches(s), 1);
  assert_int_equal(look(s, 906, err, sizeof err), SCHEMA_UNAVAILABLE); /* within retry_ms */
  assert_int_equal(schema_source_fetches(s), 1);
  usleep(300 * 1000);
  assert_int_equal(look(s, 906, err, sizeof err), SCHEMA_FOUND);
  assert_int_equal(schema_source_fetches(s), 2);
  /* found: never fetched again */
  for (int i = 0; i < 200; i++)
    assert_int_equal(look(s, 906, err, sizeof err), SCHEMA_FOUND);
  assert_int_equal(schema_source_fetches(s), 2);
  /* an outage stays an outage, asked again every retry_ms */
  for (int round = 0; round < 3; round++) {
    assert_int_equal(look(s, 904, err, sizeof err), SCHEMA_UNAVAILABLE);
    usleep(250 * 1000);
  }
  assert_int_equal(schema_source_fetches(s), 5);
  schema_source_free(s);
  fake_stop(f);
}

/* ---- TLS and credentials ---- */

static void test_tls_basic_auth(void **state) {
  (void)state;
  char cert[300], key[300], ca[300], ccert[300], ckey[300], other[300];
  in_tmp(cert, sizeof cert, "server.pem");
  in_tmp(key, sizeof key, "server.key");
  in_tmp(ca, sizeof ca, "ca.pem");
  in_tmp(ccert, sizeof ccert, "client.pem");
  in_tmp(ckey, sizeof ckey, "client.key");
  in_tmp(other, sizeof other, "other.pem");
  fake f = fake_start("--tls", cert, key, "--client-ca", ca, "--basic", USER_INFO, NULL);
  char url[128], err[600];
  snprintf(url, sizeof url, "https://127.0.0.1:%d", f.port);
  schema_source_options good = {.timeout_ms = 3000,
                                .basic_auth_user_info = USER_INFO,
                                .ca_location = ca,
                                .certificate_location = ccert,
                                .key_location = ckey,
                                .key_password = KEY_PASSWORD};
  schema_source *s = schema_source_open_registry(url, &good, err, sizeof err);
  assert_non_null(s);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_FOUND);
  assert_int_equal(look(s, 55, err, sizeof err), SCHEMA_UNKNOWN); /* 40403 over TLS too */
  schema_source_free(s);

  /* a wrong password: 401, an outage that says the credentials were refused */
  schema_source_options wrong = good;
  wrong.basic_auth_user_info = "alice:wrong-pw";
  s = schema_source_open_registry(url, &wrong, err, sizeof err);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "HTTP 401"));
  assert_non_null(strstr(err, "credentials"));
  schema_source_free(s);

  /* no credentials at all */
  schema_source_options none = good;
  none.basic_auth_user_info = NULL;
  s = schema_source_open_registry(url, &none, err, sizeof err);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "HTTP 401"));
  schema_source_free(s);

  /* user:password in the url: used, never shown */
  char cred_url[200];
  snprintf(cred_url, sizeof cred_url, "https://%s@127.0.0.1:%d", USER_INFO, f.port);
  s = schema_source_open_registry(cred_url, &none, err, sizeof err);
  assert_non_null(s);
  assert_null(strstr(schema_source_where(s), "S3cret"));
  assert_null(strstr(schema_source_where(s), "alice"));
  assert_non_null(strstr(schema_source_where(s), "[hidden]@127.0.0.1"));
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_FOUND);
  schema_source_free(s);
  snprintf(cred_url, sizeof cred_url, "https://alice:wrong-pw@127.0.0.1:%d/", f.port);
  s = schema_source_open_registry(cred_url, &none, err, sizeof err);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "[hidden]@127.0.0.1"));
  assert_null(strstr(err, "alice"));
  schema_source_free(s);

  /* an unknown CA: a TLS failure, an outage that names the CA option */
  schema_source_options bad_ca = good;
  bad_ca.ca_location = other;
  s = schema_source_open_registry(url, &bad_ca, err, sizeof err);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "CA"));
  schema_source_free(s);

  /* no client certificate: the server refuses the handshake */
  schema_source_options no_cert = good;
  no_cert.certificate_location = no_cert.key_location = no_cert.key_password = NULL;
  s = schema_source_open_registry(url, &no_cert, err, sizeof err);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_UNAVAILABLE);
  schema_source_free(s);

  /* the key's password wrong */
  schema_source_options bad_key = good;
  bad_key.key_password = "wrong-pw";
  s = schema_source_open_registry(url, &bad_key, err, sizeof err);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_UNAVAILABLE);
  schema_source_free(s);
  fake_stop(f);

  /* a url that is refused names no secret either */
  assert_null(schema_source_open_registry("ftp://alice:S3cret-Pa55word@x", NULL, err, sizeof err));
  assert_no_secret(err);
  assert_non_null(strstr(err, "[hidden]@x"));
}

static void test_bearer_token(void **state) {
  (void)state;
  char cert[300], key[300], ca[300];
  in_tmp(cert, sizeof cert, "server.pem");
  in_tmp(key, sizeof key, "server.key");
  in_tmp(ca, sizeof ca, "ca.pem");
  fake f = fake_start("--tls", cert, key, "--token", TOKEN, NULL);
  char url[128], err[600];
  snprintf(url, sizeof url, "https://localhost:%d", f.port);
  schema_source_options good = {.timeout_ms = 3000, .bearer_token = TOKEN, .ca_location = ca};
  schema_source *s = schema_source_open_registry(url, &good, err, sizeof err);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_FOUND);
  schema_source_free(s);
  schema_source_options wrong = good;
  wrong.bearer_token = "bad-token";
  s = schema_source_open_registry(url, &wrong, err, sizeof err);
  assert_int_equal(look(s, 1, err, sizeof err), SCHEMA_UNAVAILABLE);
  assert_non_null(strstr(err, "HTTP 401"));
  /* framing: refused credentials are no dead letter */
  framing fr = {.mode = FRAMING_CONFLUENT, .schemas = s};
  uint8_t frame[8] = {0};
  pm_record out;
  framing_confluent_header(1, frame);
  assert_int_equal(framing_decode(&fr, frame, sizeof frame, &out, NULL), FRAMING_RETRY);
  schema_source_free(s);
  fake_stop(f);
}

/* ---- a schema directory ---- */

static void test_dir(void **state) {
  (void)state;
  char dir[300], path[400], err[600];
  in_tmp(dir, sizeof dir, "schemas");
  assert_int_equal(mkdir(dir, 0700), 0);
  snprintf(path, sizeof path, "%s/5.avsc", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(pm_reader_schema_json, f);
  fclose(f);
  snprintf(path, sizeof path, "%s/6.avsc", dir);
  assert_int_equal(mkdir(path, 0700), 0); /* reading it fails with EISDIR */
  schema_source_options opts = {.retry_ms = 100};
  schema_source *s = schema_source_open_dir(dir, &opts, err, sizeof err);
  assert_non_null(s);
  assert_int_equal(look(s, 5, err, sizeof err), SCHEMA_FOUND);
  assert_int_equal(look(s, 4, err, sizeof err), SCHEMA_UNKNOWN);
  assert_int_equal(look(s, 6, err, sizeof err), SCHEMA_UNAVAILABLE);
  if (geteuid() != 0) { /* root reads whatever the mode says */
    snprintf(path, sizeof path, "%s/7.avsc", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(pm_reader_schema_json, f);
    fclose(f);
    assert_int_equal(chmod(path, 0), 0);
    assert_int_equal(look(s, 7, err, sizeof err), SCHEMA_UNAVAILABLE);
    assert_non_null(strstr(err, "permission"));
  }
  schema_source_free(s);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classification),
      cmocka_unit_test(test_caching),
      cmocka_unit_test(test_tls_basic_auth),
      cmocka_unit_test(test_bearer_token),
      cmocka_unit_test(test_dir),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
