/* server.c — the listener of --metrics-listen: the address parsed, the
 * socket bound by us (so that a port in use is a clear startup error, not
 * whatever the HTTP library prints), then served by libmicrohttpd on its
 * own internal polling thread (one request at a time: the render and probe
 * callbacks never run concurrently). Routes the three endpoints of
 * metrics.h; what they answer is the mode's metrics_source. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "metrics/metrics.h"
#include "metrics/text.h"
#include "util/log.h"

enum { METRICS_BACKLOG = 16, METRICS_CONNECTIONS = 32, METRICS_IDLE_SECONDS = 10 };

struct metrics_server {
  metrics_address address;
  int fd;
  struct MHD_Daemon *daemon;
  metrics_source source;
};

/* ---- the address ---- */

int metrics_parse_address(const char *text, metrics_address *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *port_text = text;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    size_t n = close ? (size_t)(close - text - 1) : 0;
    if (!close || close[1] != ':' || n == 0 || n >= sizeof out->host) {
      snprintf(err, errlen,
               "--metrics-listen needs [ADDR:]PORT (IPv6 in brackets: [::1]:9464), got '%s'", text);
      return -1;
    }
    memcpy(out->host, text + 1, n);
    out->ipv6 = 1;
    port_text = close + 2;
  } else {
    const char *colon = strrchr(text, ':');
    if (colon) {
      size_t n = (size_t)(colon - text);
      if (n == 0 || n >= sizeof out->host || memchr(text, ':', n)) {
        snprintf(err, errlen,
                 "--metrics-listen needs [ADDR:]PORT (IPv6 in brackets: [::1]:9464), got '%s'",
                 text);
        return -1;
      }
      memcpy(out->host, text, n);
      port_text = colon + 1;
    } else {
      snprintf(out->host, sizeof out->host, "127.0.0.1"); /* a bare port: loopback only */
    }
  }
  unsigned char probe[sizeof(struct in6_addr)];
  if (inet_pton(out->ipv6 ? AF_INET6 : AF_INET, out->host, probe) != 1) {
    snprintf(err, errlen, "--metrics-listen: '%s' is not a numeric %s address (in '%s')", out->host,
             out->ipv6 ? "IPv6" : "IPv4", text);
    return -1;
  }
  char *end;
  errno = 0;
  long port = strtol(port_text, &end, 10);
  if (errno || end == port_text || *end || port < 1 || port > 65535) {
    snprintf(err, errlen, "--metrics-listen needs a port from 1 to 65535, got '%s'", text);
    return -1;
  }
  out->port = (unsigned)port;
  return 0;
}

void metrics_address_format(const metrics_address *a, char *out, size_t len) {
  snprintf(out, len, a->ipv6 ? "[%s]:%u" : "%s:%u", a->host, a->port);
}

/* ---- the socket ---- */

metrics_server *metrics_server_open(const metrics_address *a, char *err, size_t errlen) {
  char where[96];
  metrics_address_format(a, where, sizeof where);
  struct sockaddr_storage ss;
  socklen_t ss_len;
  memset(&ss, 0, sizeof ss);
  if (a->ipv6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)a->port);
    inet_pton(AF_INET6, a->host, &s6->sin6_addr);
    ss_len = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)a->port);
    inet_pton(AF_INET, a->host, &s4->sin_addr);
    ss_len = sizeof *s4;
  }
  int fd = socket(a->ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd >= 0) {
    /* TIME_WAIT of an earlier run must not block a restart; a port another
     * socket listens on is still refused. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->ipv6)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  }
  if (fd < 0 || bind(fd, (struct sockaddr *)&ss, ss_len) < 0 || listen(fd, METRICS_BACKLOG) < 0) {
    int e = errno;
    const char *advice = e == EADDRINUSE ? ": another process listens there; choose another port "
                                           "(--metrics-listen PORT) or stop that process"
                         : e == EACCES   ? ": a port below 1024 needs privileges; choose one above"
                         : e == EADDRNOTAVAIL ? ": that address is not one of this machine's"
                                              : "";
    snprintf(err, errlen, "cannot listen on %s (--metrics-listen): %s%s", where, strerror(e),
             advice);
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  metrics_server *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  s->address = *a;
  s->fd = fd;
  return s;
}

/* ---- requests ---- */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *type,
                              char *body, size_t len) {
  struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
  if (!r) {
    free(body);
    return MHD_NO;
  }
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  enum MHD_Result rc = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return rc;
}

static enum MHD_Result answer_text(struct MHD_Connection *c, unsigned status, const char *line) {
  size_t n = strlen(line);
  char *body = malloc(n + 2);
  if (!body)
    return MHD_NO;
  memcpy(body, line, n);
  body[n] = '\n';
  body[n + 1] = '\0';
  return answer(c, status, "text/plain; charset=utf-8", body, n + 1);
}

static enum MHD_Result answer_probe(struct MHD_Connection *c, void *ctx,
                                    int (*probe)(void *, char *, size_t)) {
  char why[512] = "";
  if (!probe || probe(ctx, why, sizeof why) == 0)
    return answer_text(c, MHD_HTTP_OK, "ok");
  return answer_text(c, MHD_HTTP_SERVICE_UNAVAILABLE, why[0] ? why : "not ok");
}

static enum MHD_Result answer_metrics(struct MHD_Connection *c, const metrics_source *src) {
  metrics_text *t = metrics_text_new();
  if (!t)
    return answer_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  metrics_family(t, "regstream_build_info", "gauge",
                 "Always 1; the version of the regstream binary as a label.");
  metrics_u64(t, "regstream_build_info", 1, "version", metrics_version, NULL);
  if (src->render)
    src->render(src->ctx, t);
  size_t len;
  char *body = metrics_text_take(t, &len);
  metrics_text_free(t);
  if (!body)
    return answer_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
  return answer(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state) {
  (void)version;
  (void)upload;
  metrics_server *s = cls;
  if (!*state) { /* the headers: answer once the whole request is in */
    *state = s;
    return MHD_YES;
  }
  if (*upload_size) { /* a body we do not want */
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
    return answer_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD");
  const metrics_source *src = &s->source;
  if (!strcmp(url, "/metrics"))
    return answer_metrics(c, src);
  if (!strcmp(url, "/healthz"))
    return answer_probe(c, src->ctx, src->health);
  if (!strcmp(url, "/readyz"))
    return answer_probe(c, src->ctx, src->ready);
  return answer_text(c, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz or /readyz");
}

/* libmicrohttpd's own messages, through the program's one log path. */
static void on_library_message(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char line[512];
  vsnprintf(line, sizeof line, fmt, ap);
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  log_msg(LOG_WARN, "metrics", "metrics listener: %s", line);
}

int metrics_server_serve(metrics_server *s, const metrics_source *src, char *err, size_t errlen) {
  s->source = *src;
  /* The logger first, or libmicrohttpd prints what comes before it itself. */
  s->daemon = MHD_start_daemon(
      MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG | (s->address.ipv6 ? MHD_USE_IPv6 : 0), 0,
      NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, on_library_message, NULL,
      MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNECTIONS,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_IDLE_SECONDS, MHD_OPTION_END);
  if (!s->daemon) {
    char where[96];
    metrics_address_format(&s->address, where, sizeof where);
    snprintf(err, errlen, "cannot start the metrics listener on %s (libmicrohttpd refused)", where);
    return -1;
  }
  return 0;
}

void metrics_server_close(metrics_server *s) {
  if (!s)
    return;
  if (s->daemon)
    MHD_stop_daemon(s->daemon); /* closes the listening socket it was given */
  else
    close(s->fd);
  free(s);
}
