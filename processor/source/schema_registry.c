/* schema_registry.c — Confluent schema id -> resolution plan, from a Schema
 * Registry (libcurl + jansson) or a directory of <id>.avsc files, cached in a
 * lock-free-read table of immutable entries (see schema_registry.h). */
#include "source/schema_registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum { SOURCE_REGISTRY, SOURCE_DIR };
enum { RESPONSE_MAX = 4 << 20, ENTRY_REASON_MAX = 512 };

/* One answer for one id, immutable once published. */
typedef struct entry {
  uint32_t id;
  schema_status status;
  pm_plan *plan;      /* SCHEMA_FOUND only */
  int64_t expires_ns; /* when a non-found answer is asked again */
  char reason[ENTRY_REASON_MAX];
  struct entry *next; /* every entry ever made, for schema_source_free */
} entry;

struct schema_source {
  int kind;
  char *base;  /* registry url without trailing '/', or directory */
  char *shown; /* base with any user:password@ replaced by [hidden]@: what messages say */
  schema_source_options opts;
  CURL *curl; /* used under mu only */
  pthread_mutex_t mu;
  _Atomic(entry *) slots[SCHEMA_SOURCE_SLOTS];
  entry *all;      /* under mu */
  entry *overflow; /* under mu: answers for ids that found no slot */
  _Atomic uint64_t fetches;
  _Atomic uint64_t failures; /* fetches answered SCHEMA_UNAVAILABLE */
};

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint32_t slot_of(uint32_t id) {
  return (id * 2654435761u) & (SCHEMA_SOURCE_SLOTS - 1);
}

const char *schema_status_name(schema_status st) {
  switch (st) {
  case SCHEMA_FOUND:
    return "found";
  case SCHEMA_UNKNOWN:
    return "unknown";
  case SCHEMA_UNAVAILABLE:
    return "unavailable";
  case SCHEMA_INVALID:
    return "invalid";
  }
  return "?";
}

/* url with the user information of its authority (scheme://user:pass@host)
 * replaced by "[hidden]": the only form of a registry url that is printed. */
static char *url_shown(const char *url) {
  const char *auth = strstr(url, "://");
  auth = auth ? auth + 3 : url;
  size_t host_end = strcspn(auth, "/?#");
  const char *at = NULL; /* the last '@' of the authority ends the user information */
  for (const char *q = auth; q < auth + host_end; q++)
    if (*q == '@')
      at = q;
  if (!at)
    return strdup(url);
  size_t head = (size_t)(auth - url);
  size_t len = head + strlen("[hidden]") + strlen(at) + 1;
  char *out = malloc(len);
  if (out)
    snprintf(out, len, "%.*s[hidden]%s", (int)head, url, at);
  return out;
}

static schema_source *source_new(int kind, const char *base, const schema_source_options *opts) {
  schema_source *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->kind = kind;
  s->base = strdup(base);
  if (opts)
    s->opts = *opts;
  if (s->opts.connect_timeout_ms <= 0)
    s->opts.connect_timeout_ms = 2000;
  if (s->opts.timeout_ms <= 0)
    s->opts.timeout_ms = 5000;
  if (s->opts.unknown_ttl_ms <= 0)
    s->opts.unknown_ttl_ms = 60000;
  if (s->opts.retry_ms <= 0)
    s->opts.retry_ms = 1000;
  pthread_mutex_init(&s->mu, NULL);
  for (int i = 0; i < SCHEMA_SOURCE_SLOTS; i++)
    atomic_init(&s->slots[i], NULL);
  atomic_init(&s->fetches, 0);
  atomic_init(&s->failures, 0);
  if (!s->base) {
    free(s);
    return NULL;
  }
  size_t n = strlen(s->base);
  while (n > 1 && s->base[n - 1] == '/')
    s->base[--n] = '\0';
  if (!(s->shown = url_shown(s->base))) {
    free(s->base);
    free(s);
    return NULL;
  }
  return s;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code;
static void curl_init_global(void) {
  curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT);
}

schema_source *schema_source_open_registry(const char *url, const schema_source_options *opts,
                                           char *err, size_t errlen) {
  if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)) {
    char *shown = url ? url_shown(url) : NULL;
    snprintf(err, errlen, "schema registry url must start with http:// or https://, got '%s'",
             shown ? shown : "");
    free(shown);
    return NULL;
  }
  pthread_once(&curl_once, curl_init_global);
  if (curl_init_code != CURLE_OK) {
    snprintf(err, errlen, "libcurl init failed: %s", curl_easy_strerror(curl_init_code));
    return NULL;
  }
  schema_source *s = source_new(SOURCE_REGISTRY, url, opts);
  if (!s || !(s->curl = curl_easy_init())) {
    snprintf(err, errlen, "out of memory opening the schema registry");
    schema_source_free(s);
    return NULL;
  }
  return s;
}

schema_source *schema_source_open_dir(const char *dir, const schema_source_options *opts, char *err,
                                      size_t errlen) {
  struct stat st;
  if (!dir || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "schema directory %s: %s", dir ? dir : "",
             dir && errno ? strerror(errno) : "not a directory");
    return NULL;
  }
  schema_source *s = source_new(SOURCE_DIR, dir, opts);
  if (!s)
    snprintf(err, errlen, "out of memory opening schema directory %s", dir);
  return s;
}

void schema_source_free(schema_source *s) {
  if (!s)
    return;
  for (entry *e = s->all; e;) {
    entry *next = e->next;
    pm_plan_free(e->plan);
    free(e);
    e = next;
  }
  for (entry *e = s->overflow; e;) {
    entry *next = e->next;
    pm_plan_free(e->plan);
    free(e);
    e = next;
  }
  if (s->curl)
    curl_easy_cleanup(s->curl);
  pthread_mutex_destroy(&s->mu);
  free(s->shown);
  free(s->base);
  free(s);
}

const char *schema_source_where(const schema_source *s) {
  return s->shown;
}

uint64_t schema_source_fetches(const schema_source *s) {
  return atomic_load(&((schema_source *)s)->fetches);
}

uint64_t schema_source_failures(const schema_source *s) {
  return atomic_load(&((schema_source *)s)->failures);
}

/* ---- fetching ---- */

typedef struct body {
  char *data;
  size_t len;
  int too_big;
} body;

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *ctx) {
  body *b = ctx;
  size_t n = size * nmemb;
  if (b->len + n > RESPONSE_MAX) {
    b->too_big = 1;
    return 0;
  }
  char *grown = realloc(b->data, b->len + n + 1);
  if (!grown)
    return 0;
  b->data = grown;
  memcpy(b->data + b->len, ptr, n);
  b->len += n;
  b->data[b->len] = '\0';
  return n;
}

/* vsnprintf: a long path or url is cut, not a compile-time warning. */
static void entry_reason(entry *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->reason, sizeof e->reason, fmt, ap);
  va_end(ap);
}

static void entry_plan(entry *e, const char *json, size_t len, const char *where) {
  char perr[160];
  e->plan = pm_plan_from_json(json, len, perr, sizeof perr);
  if (e->plan) {
    e->status = SCHEMA_FOUND;
  } else {
    e->status = SCHEMA_INVALID;
    entry_reason(e, "schema id %u from %s: %s", e->id, where, perr);
  }
}

/* Whether a 404's body is Confluent's "Schema not found" (error_code 40403):
 * the one answer that says the id does not exist. */
static int is_schema_not_found(const body *b) {
  json_error_t jerr;
  json_t *root = b->data ? json_loadb(b->data, b->len, 0, &jerr) : NULL;
  json_t *code = root ? json_object_get(root, "error_code") : NULL;
  int yes = json_is_integer(code) && json_integer_value(code) == 40403;
  json_decref(root);
  return yes;
}

/* Replaces every occurrence of secret (its first n bytes) in text by
 * "[hidden]". */
static void scrub_one(char *text, size_t cap, const char *secret, size_t n) {
  if (!secret || n < 3) /* too short to tell from ordinary text */
    return;
  char copy[1024];
  if (n >= sizeof copy)
    n = sizeof copy - 1;
  memcpy(copy, secret, n);
  copy[n] = '\0';
  for (char *at = text; (at = strstr(at, copy)) != NULL;) {
    char rest[ENTRY_REASON_MAX];
    snprintf(rest, sizeof rest, "%s", at + n);
    snprintf(at, cap - (size_t)(at - text), "[hidden]%s", rest);
    at += strlen("[hidden]");
  }
}

/* A secret and, for "user:password", its password alone. */
static void scrub_pair(char *text, size_t cap, const char *secret, size_t n) {
  if (!secret)
    return;
  scrub_one(text, cap, secret, n);
  const char *colon = memchr(secret, ':', n);
  if (colon)
    scrub_one(text, cap, colon + 1, n - (size_t)(colon + 1 - secret));
}

/* A last guard on a reason (none is built from a secret): every secret the
 * source was given, or that its url carries, replaced by "[hidden]". */
static void scrub(const schema_source *s, char *text, size_t cap) {
  const schema_source_options *o = &s->opts;
  if (o->basic_auth_user_info)
    scrub_pair(text, cap, o->basic_auth_user_info, strlen(o->basic_auth_user_info));
  if (o->bearer_token)
    scrub_one(text, cap, o->bearer_token, strlen(o->bearer_token));
  if (o->key_password)
    scrub_one(text, cap, o->key_password, strlen(o->key_password));
  const char *auth = strstr(s->base, "://");
  auth = auth ? auth + 3 : s->base;
  size_t host_end = strcspn(auth, "/?#");
  const char *at = NULL;
  for (const char *q = auth; q < auth + host_end; q++)
    if (*q == '@')
      at = q;
  if (at)
    scrub_pair(text, cap, auth, (size_t)(at - auth));
}

/* What an HTTP failure means for the operator, one line. */
static const char *http_hint(long http) {
  if (http == 401)
    return "the registry refused the credentials: check schema.registry.basic.auth.user.info "
           "or the bearer token";
  if (http == 403)
    return "the registry denied access: the credentials may not read schemas";
  if (http == 404)
    return "not Confluent's \"schema not found\" (40403): is the url the registry's base url?";
  if (http >= 500)
    return "the registry failed";
  return "unexpected answer: check the registry url";
}

static void fetch_registry(schema_source *s, entry *e) {
  char url[4400];
  snprintf(url, sizeof url, "%s/schemas/ids/%u", s->base, e->id);
  body b = {0};
  CURL *c = s->curl;
  const schema_source_options *o = &s->opts;
  char curl_err[CURL_ERROR_SIZE] = "";
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, o->timeout_ms);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "regstream");
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (o->basic_auth_user_info) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(c, CURLOPT_USERPWD, o->basic_auth_user_info);
  }
  if (o->ca_location)
    curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_location);
  if (o->certificate_location)
    curl_easy_setopt(c, CURLOPT_SSLCERT, o->certificate_location);
  if (o->key_location)
    curl_easy_setopt(c, CURLOPT_SSLKEY, o->key_location);
  if (o->key_password)
    curl_easy_setopt(c, CURLOPT_KEYPASSWD, o->key_password);
  struct curl_slist *headers =
      curl_slist_append(NULL, "Accept: application/vnd.schemaregistry.v1+json, "
                              "application/vnd.schemaregistry+json, application/json");
  char bearer[4200] = "";
  if (o->bearer_token && !o->basic_auth_user_info) {
    snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", o->bearer_token);
    headers = curl_slist_append(headers, bearer);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  long http = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
  curl_slist_free_all(headers);
  memset(bearer, 0, sizeof bearer);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
  if (rc != CURLE_OK) {
    /* unreachable, timed out, TLS refused: not an answer about the id */
    int tls = rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
              rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CIPHER ||
              rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_ISSUER_ERROR;
    if (strstr(curl_err, "SSL") || strstr(curl_err, "certificate"))
      tls = 1;
    e->status = SCHEMA_UNAVAILABLE;
    entry_reason(e, "schema registry at %s unavailable (%s)%s", s->shown,
                 b.too_big     ? "response too large"
                 : curl_err[0] ? curl_err
                               : curl_easy_strerror(rc),
                 tls ? ": check the registry's CA file, client certificate and key"
                     : ": is it running and reachable?");
  } else if (http == 404 && is_schema_not_found(&b)) {
    e->status = SCHEMA_UNKNOWN;
    entry_reason(e, "schema id %u not found in registry %s", e->id, s->shown);
  } else if (http != 200) {
    e->status = SCHEMA_UNAVAILABLE;
    entry_reason(e, "schema registry at %s unavailable (HTTP %ld): %s", s->shown, http,
                 http_hint(http));
  } else {
    json_error_t jerr;
    json_t *root = b.data ? json_loadb(b.data, b.len, 0, &jerr) : NULL;
    json_t *schema = root ? json_object_get(root, "schema") : NULL;
    json_t *type = root ? json_object_get(root, "schemaType") : NULL;
    if (!json_is_string(schema)) {
      /* A 200 that is not a registry's answer (a proxy, a wrong url): says
       * nothing about the id, so not bad data. */
      e->status = SCHEMA_UNAVAILABLE;
      entry_reason(e,
                   "schema registry at %s unavailable: its answer for id %u has no \"schema\" "
                   "string (is the url the registry's base url?)",
                   s->shown, e->id);
    } else if (type && (!json_is_string(type) || strcmp(json_string_value(type), "AVRO") != 0)) {
      e->status = SCHEMA_INVALID;
      entry_reason(e, "schema id %u is not an Avro schema", e->id);
    } else {
      entry_plan(e, json_string_value(schema), json_string_length(schema), s->shown);
    }
    json_decref(root);
  }
  scrub(s, e->reason, sizeof e->reason);
  free(b.data);
}

static void fetch_dir(schema_source *s, entry *e) {
  char path[4400];
  snprintf(path, sizeof path, "%s/%u.avsc", s->base, e->id);
  FILE *f = fopen(path, "rb");
  if (!f) {
    /* no such file: the id is unknown; any other error (EACCES, EIO, ...)
     * says nothing about the id */
    int unknown = errno == ENOENT;
    e->status = unknown ? SCHEMA_UNKNOWN : SCHEMA_UNAVAILABLE;
    if (unknown)
      entry_reason(e, "schema id %u: no file %s", e->id, path);
    else
      entry_reason(e, "schema directory %s unavailable: cannot open %s (%s): check its permissions",
                   s->base, path, strerror(errno));
    return;
  }
  body b = {0};
  char chunk[8192];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    if (body_write(chunk, 1, n, &b) != n)
      break;
  int bad = ferror(f) || b.too_big || !feof(f);
  fclose(f);
  if (bad || !b.data) {
    e->status = bad ? SCHEMA_UNAVAILABLE : SCHEMA_INVALID;
    if (bad)
      entry_reason(e, "schema directory %s unavailable: cannot read %s: check the disk", s->base,
                   path);
    else
      entry_reason(e, "schema id %u: %s: empty file", e->id, path);
  } else {
    entry_plan(e, b.data, b.len, path);
  }
  free(b.data);
}

/* ---- lookup ---- */

static const pm_plan *answer(const entry *e, schema_status *status, char *err, size_t errlen) {
  *status = e->status;
  if (e->status == SCHEMA_FOUND)
    return e->plan;
  if (err && errlen)
    snprintf(err, errlen, "%s", e->reason);
  return NULL;
}

static int entry_fresh(const entry *e, int64_t now) {
  return e->status == SCHEMA_FOUND || now < e->expires_ns;
}

static const pm_plan *lookup_slow(schema_source *s, uint32_t id, schema_status *status, char *err,
                                  size_t errlen) {
  pthread_mutex_lock(&s->mu);
  /* find the id's slot (or the first free one) and the overflow answer */
  _Atomic(entry *) *slot = NULL;
  entry *old = NULL;
  uint32_t h = slot_of(id);
  for (uint32_t i = 0; i < SCHEMA_SOURCE_SLOTS; i++) {
    _Atomic(entry *) *at = &s->slots[(h + i) & (SCHEMA_SOURCE_SLOTS - 1)];
    entry *e = atomic_load_explicit(at, memory_order_relaxed);
    if (!e || e->id == id) {
      slot = at;
      old = e;
      break;
    }
  }
  entry **over = NULL;
  if (!slot)
    for (over = &s->overflow; *over && (*over)->id != id; over = &(*over)->next)
      ;
  if (over && *over)
    old = *over;
  int64_t now = now_ns();
  if (old && entry_fresh(old, now)) { /* another thread got there first */
    const pm_plan *plan = answer(old, status, err, errlen);
    pthread_mutex_unlock(&s->mu);
    return plan;
  }
  entry *e = calloc(1, sizeof *e);
  if (!e) {
    pthread_mutex_unlock(&s->mu);
    *status = SCHEMA_UNAVAILABLE;
    if (err && errlen)
      snprintf(err, errlen, "out of memory looking up schema id %u", id);
    return NULL;
  }
  e->id = id;
  atomic_fetch_add(&s->fetches, 1);
  if (s->kind == SOURCE_REGISTRY)
    fetch_registry(s, e);
  else
    fetch_dir(s, e);
  if (e->status == SCHEMA_UNAVAILABLE)
    atomic_fetch_add(&s->failures, 1);
  now = now_ns();
  e->expires_ns =
      now + (e->status == SCHEMA_UNAVAILABLE ? s->opts.retry_ms : s->opts.unknown_ttl_ms) * 1000000;
  if (slot) {
    /* the replaced entry stays alive (in s->all) for readers holding it */
    e->next = s->all;
    s->all = e;
    atomic_store_explicit(slot, e, memory_order_release);
  } else if (old) {
    /* overflow: replace in place; overflow entries are read under mu only */
    entry *keep_next = old->next;
    pm_plan_free(old->plan);
    *old = *e;
    old->next = keep_next;
    free(e);
    e = old;
  } else {
    e->next = s->overflow;
    s->overflow = e;
  }
  const pm_plan *plan = answer(e, status, err, errlen);
  pthread_mutex_unlock(&s->mu);
  return plan;
}

const pm_plan *schema_source_lookup(schema_source *s, uint32_t id, schema_status *status, char *err,
                                    size_t errlen) {
  uint32_t h = slot_of(id);
  for (uint32_t i = 0; i < SCHEMA_SOURCE_SLOTS; i++) {
    const entry *e =
        atomic_load_explicit(&s->slots[(h + i) & (SCHEMA_SOURCE_SLOTS - 1)], memory_order_acquire);
    if (!e)
      break;
    if (e->id == id) {
      if (e->status == SCHEMA_FOUND) {
        *status = SCHEMA_FOUND;
        return e->plan;
      }
      if (entry_fresh(e, now_ns()))
        return answer(e, status, err, errlen);
      break;
    }
  }
  return lookup_slow(s, id, status, err, errlen);
}
