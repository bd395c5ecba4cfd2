/* test_app_metrics.c — the metrics room without a broker: the exposition
 * format (HELP/TYPE lines, label values escaped, integers exact, NaN and
 * infinities by name), --metrics-listen addresses (a bare port is
 * 127.0.0.1; IPv6 in brackets; bad ones refused with a reason), and the
 * listener over a made-up source: /metrics, /healthz and /readyz with their
 * status and reason, 404 and 405, a port in use refused at open. The real
 * parser reads a Kafka-mode run's /metrics in tests/kafka_metrics.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics/metrics.h"

static void exposition_format(void **state) {
  (void)state;
  metrics_text *t = metrics_text_new();
  assert_non_null(t);
  metrics_family(t, "x_total", "counter", "Help with a \\ and\na newline.");
  metrics_u64(t, "x_total", UINT64_MAX, NULL);
  metrics_u64(t, "x_total", 7, "a", "q\"uo\\te\nd", "b", "", NULL);
  metrics_f64(t, "y", 0.25, NULL);
  metrics_f64(t, "y", NAN, NULL);
  metrics_f64(t, "y", INFINITY, NULL);
  metrics_f64(t, "y", -INFINITY, NULL);
  assert_string_equal(metrics_text_get(t), "# HELP x_total Help with a \\\\ and\\na newline.\n"
                                           "# TYPE x_total counter\n"
                                           "x_total 18446744073709551615\n"
                                           "x_total{a=\"q\\\"uo\\\\te\\nd\",b=\"\"} 7\n"
                                           "y 0.25\n"
                                           "y NaN\n"
                                           "y +Inf\n"
                                           "y -Inf\n");
  metrics_text_free(t);
}

static void addresses(void **state) {
  (void)state;
  metrics_address a;
  char err[256], shown[96];
  assert_int_equal(metrics_parse_address("9464", &a, err, sizeof err), 0);
  assert_string_equal(a.host, "127.0.0.1");
  assert_int_equal(a.port, 9464);
  assert_int_equal(a.ipv6, 0);
  assert_int_equal(metrics_parse_address("0.0.0.0:80", &a, err, sizeof err), 0);
  assert_string_equal(a.host, "0.0.0.0");
  assert_int_equal(metrics_parse_address("[::1]:9464", &a, err, sizeof err), 0);
  assert_string_equal(a.host, "::1");
  assert_int_equal(a.ipv6, 1);
  metrics_address_format(&a, shown, sizeof shown);
  assert_string_equal(shown, "[::1]:9464");
  const char *bad[] = {"",      "0",      "65536",       "x",  "host:1",   "::1:5",
                       "[::1]", "[::1]:", "[1.2.3.4]:5", ":9", "1.2.3.4:", "1.2.3.4:9x"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = 0;
    assert_int_equal(metrics_parse_address(bad[i], &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "--metrics-listen"));
  }
}

static int ready_answer;
static void render(void *ctx, metrics_text *t) {
  (void)ctx;
  metrics_family(t, "test_things", "gauge", "Things.");
  metrics_u64(t, "test_things", 3, "kind", "a", NULL);
}
static int health(void *ctx, char *why, size_t len) {
  (void)ctx;
  (void)why;
  (void)len;
  return 0;
}
static int ready(void *ctx, char *why, size_t len) {
  (void)ctx;
  if (ready_answer == 0)
    return 0;
  snprintf(why, len, "broker trouble: made up");
  return -1;
}

/* One HTTP/1.0 request to 127.0.0.1:port; the whole answer into out. */
static void request(unsigned port, const char *method, const char *path, char *out, size_t cap) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(fd >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  char line[256];
  int n = snprintf(line, sizeof line, "%s %s HTTP/1.0\r\nHost: x\r\n\r\n", method, path);
  assert_int_equal(write(fd, line, (size_t)n), n);
  size_t len = 0;
  ssize_t got;
  while (len + 1 < cap && (got = read(fd, out + len, cap - 1 - len)) > 0)
    len += (size_t)got;
  out[len] = 0;
  close(fd);
}

static void listener(void **state) {
  (void)state;
  /* A free port: bind 0, read it, close, then open ours there. */
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  socklen_t sl = sizeof sa;
  assert_int_equal(bind(probe, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(getsockname(probe, (struct sockaddr *)&sa, &sl), 0);
  unsigned port = ntohs(sa.sin_port);
  close(probe);

  char text[16], err[512];
  snprintf(text, sizeof text, "%u", port);
  metrics_address a;
  assert_int_equal(metrics_parse_address(text, &a, err, sizeof err), 0);
  metrics_server *s = metrics_server_open(&a, err, sizeof err);
  assert_non_null(s);
  /* the same port again: a clear error */
  assert_null(metrics_server_open(&a, err, sizeof err));
  assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
  assert_non_null(strstr(err, "already in use"));
  metrics_source src = {NULL, render, health, ready};
  assert_int_equal(metrics_server_serve(s, &src, err, sizeof err), 0);

  char out[8192];
  request(port, "GET", "/metrics", out, sizeof out);
  assert_non_null(strstr(out, "HTTP/1.1 200"));
  assert_non_null(strstr(out, "Content-Type: text/plain; version=0.0.4"));
  assert_non_null(strstr(out, "regstream_build_info{version=\""));
  assert_non_null(strstr(out, "# TYPE test_things gauge\ntest_things{kind=\"a\"} 3\n"));
  request(port, "GET", "/healthz", out, sizeof out);
  assert_non_null(strstr(out, "HTTP/1.1 200"));
  assert_non_null(strstr(out, "\r\n\r\nok\n"));
  ready_answer = 0;
  request(port, "GET", "/readyz", out, sizeof out);
  assert_non_null(strstr(out, "HTTP/1.1 200"));
  ready_answer = 1;
  request(port, "GET", "/readyz", out, sizeof out);
  assert_non_null(strstr(out, "HTTP/1.1 503"));
  assert_non_null(strstr(out, "\r\n\r\nbroker trouble: made up\n"));
  request(port, "GET", "/metricsx", out, sizeof out);
  assert_non_null(strstr(out, "HTTP/1.1 404"));
  request(port, "POST", "/metrics", out, sizeof out);
  assert_non_null(strstr(out, "HTTP/1.1 405"));
  metrics_server_close(s);

  /* closed: the port is free again */
  s = metrics_server_open(&a, err, sizeof err);
  assert_non_null(s);
  metrics_server_close(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(exposition_format),
      cmocka_unit_test(addresses),
      cmocka_unit_test(listener),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
