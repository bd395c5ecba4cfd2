/* client.c — librdkafka clients. For every Kafka client of the program
 * (produce, export, the Kafka mode): configuration items, the reachability
 * check, topics made on demand (client.h). For the Kafka mode's run (mode.h):
 * its three clients by role with their defaults and callbacks, its topics,
 * log ends and row production. What the clients' messages mean stays with
 * the worker, partials and merger files. */
#include "kafka/client.h"
#include "kafka/mode.h"
#include "util/clock.h"
#include "util/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- secrets ---- */

/* Words that make a key secret wherever they appear in its name. */
static const char *const secret_words[] = {
    "password",           "passwd",   "pasw",    "secret",  "token",     "credential", "jaas",
    "oauthbearer.config", "keystore", "key.pem", "private", "user.info", "userinfo"};
/* The schema.registry.* keys whose values may be shown (paths and the URL). */
static const char *const registry_plain_keys[] = {"url", "ssl.ca.location",
                                                  "ssl.certificate.location", "ssl.key.location"};

static int contains_ci(const char *s, size_t n, const char *word) {
  size_t w = strlen(word);
  for (size_t i = 0; i + w <= n; i++)
    if (!strncasecmp(s + i, word, w))
      return 1;
  return 0;
}

/* librdkafka's property names (client and topic), from its own table
 * (rd_kafka_conf_properties_show), read once: "name | C/P | ..." lines. */
static char *known_names; /* "\nname1\nname2\n...\n" */
static pthread_once_t known_once = PTHREAD_ONCE_INIT;

static void known_load(void) {
  char *table = NULL;
  size_t size = 0;
  FILE *f = open_memstream(&table, &size);
  if (!f)
    return;
  rd_kafka_conf_properties_show(f);
  fclose(f);
  known_names = malloc(size + 2);
  if (!known_names) {
    free(table);
    return;
  }
  char *o = known_names;
  *o++ = '\n';
  for (char *line = table; line && *line;) {
    char *nl = strchr(line, '\n');
    size_t n = strcspn(line, " |\n");
    if (n && line[n] == ' ' && strchr(line, '|') && (!nl || strchr(line, '|') < nl)) {
      memcpy(o, line, n);
      o += n;
      *o++ = '\n';
    }
    line = nl ? nl + 1 : NULL;
  }
  *o = 0;
  free(table);
}

static int librdkafka_knows(const char *key) {
  pthread_once(&known_once, known_load);
  if (!known_names)
    return 0;
  char needle[260];
  snprintf(needle, sizeof needle, "\n%s\n", key);
  return strstr(known_names, needle) != NULL;
}

int kafka_conf_is_secret(const char *key, size_t len) {
  for (size_t i = 0; i < sizeof secret_words / sizeof *secret_words; i++)
    if (contains_ci(key, len, secret_words[i]))
      return 1;
  char name[256];
  if (len >= sizeof name)
    return 1; /* no property is that long: a value pasted as a key? */
  memcpy(name, key, len);
  name[len] = 0;
  static const char registry[] = "schema.registry.";
  if (!strncmp(name, registry, sizeof registry - 1)) {
    for (size_t i = 0; i < sizeof registry_plain_keys / sizeof *registry_plain_keys; i++)
      if (!strcmp(name + sizeof registry - 1, registry_plain_keys[i]))
        return 0;
    return 1;
  }
  /* a key librdkafka does not know may be a mistyped secret (sasl.pasword) */
  return !librdkafka_knows(name);
}

/* The secret values set so far (copies, for the life of the process):
 * every librdkafka message and error is scrubbed of them. */
enum { MAX_SECRETS = 32, MIN_SECRET_LEN = 4 };
static pthread_mutex_t secrets_lock = PTHREAD_MUTEX_INITIALIZER;
static char *secrets[MAX_SECRETS];
static int secret_count;

static void secret_note(const char *value) {
  if (strlen(value) < MIN_SECRET_LEN)
    return;
  pthread_mutex_lock(&secrets_lock);
  int known = 0;
  for (int i = 0; i < secret_count && !known; i++)
    known = !strcmp(secrets[i], value);
  if (!known && secret_count < MAX_SECRETS) {
    char *copy = strdup(value);
    if (copy)
      secrets[secret_count++] = copy;
  }
  pthread_mutex_unlock(&secrets_lock);
}

void kafka_redact(const char *in, char *out, size_t outlen) {
  if (!outlen)
    return;
  pthread_mutex_lock(&secrets_lock);
  size_t o = 0;
  while (*in && o + 1 < outlen) {
    size_t hit = 0;
    for (int i = 0; i < secret_count && !hit; i++)
      if (!strncmp(in, secrets[i], strlen(secrets[i])))
        hit = strlen(secrets[i]);
    if (hit) {
      int n = snprintf(out + o, outlen - o, "[hidden]");
      o = n < 0 || (size_t)n >= outlen - o ? outlen - 1 : o + (size_t)n;
      in += hit;
    } else {
      out[o++] = *in++;
    }
  }
  out[o] = 0;
  pthread_mutex_unlock(&secrets_lock);
}

void kafka_conf_describe(const char *item, char *out, size_t outlen) {
  const char *eq = strchr(item, '=');
  size_t klen = eq ? (size_t)(eq - item) : strlen(item);
  if (kafka_conf_is_secret(item, klen))
    snprintf(out, outlen, eq ? "%.*s=[hidden]" : "[hidden]", (int)klen, item);
  else
    snprintf(out, outlen, "%s", item);
}

/* ---- where the settings came from, and whether librdkafka may talk ---- */

static char conf_origin[600] = "the -X options";
static atomic_int log_verbose; /* debug or log_level set by the user */
static atomic_int kafka_reached;
static atomic_int log_held; /* kafka_log_hold: the program fails with its own one line */

void kafka_conf_origin(const char *what) {
  snprintf(conf_origin, sizeof conf_origin, "%s", what);
}

/* ---- librdkafka's log lines and error events ----
 * Routed through util/log.h: in text "regstream: librdkafka LEVEL [FAC]:
 * text", in JSON component "librdkafka" with the level mapped from syslog's
 * (0-3 error, 4 warn, 5-6 info, 7 debug) and fields facility, client,
 * syslog_level (and held_back with the repeat count); scrubbed of
 * secrets; warnings and worse (level <= 4) always, the rest when the user
 * set debug or log_level. One line per distinct text (digits ignored: "after
 * 3ms") per LOG_REPEAT_SECONDS, with a count of those held back. Until a
 * broker has answered once (kafka_metadata_fetch) they are held back, the
 * last kept: a start that fails says why in its own one line. */
enum { LOG_SLOTS = 64, LOG_REPEAT_SECONDS = 10 };
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  uint64_t hash;
  double at;
  unsigned held;
} log_seen[LOG_SLOTS];
static char last_quiet[400];

static const char *level_name(int level) {
  static const char *const names[] = {"emergency", "alert",  "critical", "error",
                                      "warning",   "notice", "info",     "debug"};
  return level >= 0 && level <= 7 ? names[level] : "debug";
}

static uint64_t text_hash(const char *fac, const char *text) {
  uint64_t h = 1469598103934665603ULL;
  for (const char *s = fac; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  for (const char *s = text; *s; s++)
    if (*s < '0' || *s > '9')
      h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static log_level log_level_of(int syslog_level) {
  return syslog_level <= 3   ? LOG_ERROR
         : syslog_level == 4 ? LOG_WARN
         : syslog_level <= 6 ? LOG_INFO
                             : LOG_DEBUG;
}

static void route(const rd_kafka_t *rk, int level, const char *fac, const char *text) {
  char clean[1024];
  if (!strncmp(text, "[thrd:", 6) && strstr(text, "]: "))
    text = strstr(text, "]: ") + 3; /* librdkafka's thread name: noise here */
  kafka_redact(text, clean, sizeof clean);
  int verbose = atomic_load(&log_verbose);
  if (level > 4 && !verbose)
    return;
  pthread_mutex_lock(&log_lock);
  if ((!atomic_load(&kafka_reached) || atomic_load(&log_held)) && !verbose) {
    memcpy(last_quiet, clean, sizeof last_quiet - 1); /* clean is NUL-terminated */
    last_quiet[sizeof last_quiet - 1] = 0;
    pthread_mutex_unlock(&log_lock);
    return;
  }
  uint64_t h = text_hash(fac, clean);
  double now = clock_seconds();
  int slot = (int)(h % LOG_SLOTS);
  unsigned held = 0;
  if (log_seen[slot].hash == h && now - log_seen[slot].at < LOG_REPEAT_SECONDS) {
    log_seen[slot].held++;
    pthread_mutex_unlock(&log_lock);
    return;
  }
  if (log_seen[slot].hash == h)
    held = log_seen[slot].held;
  log_seen[slot].hash = h;
  log_seen[slot].at = now;
  log_seen[slot].held = 0;
  char line[1200];
  if (held)
    snprintf(line, sizeof line, "librdkafka %s [%s]: %s (and %u more like it in %d s)",
             level_name(level), fac, clean, held, LOG_REPEAT_SECONDS);
  else
    snprintf(line, sizeof line, "librdkafka %s [%s]: %s", level_name(level), fac, clean);
  json_t *fields = json_pack("{s:s,s:s,s:i}", "facility", fac, "client",
                             rk ? rd_kafka_name(rk) : "", "syslog_level", level);
  if (fields && held) {
    json_object_set_new(fields, "held_back", json_integer(held));
    json_object_set_new(fields, "held_back_seconds", json_integer(LOG_REPEAT_SECONDS));
  }
  /* under log_lock, so that the line of a held-back count comes after its first */
  log_text_json(log_level_of(level), "librdkafka", fields, line, clean);
  pthread_mutex_unlock(&log_lock);
}

/* ---- the first cause per client that no retry mends ---- */

enum { CAUSE_SLOTS = 32 };
static pthread_mutex_t cause_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  char client[64];
  kafka_cause_kind kind;
  char broker[128];
  char detail[300];
} causes[CAUSE_SLOTS];
static int cause_next;

static int has(const char *text, const char *word) {
  return contains_ci(text, strlen(text), word);
}

static kafka_cause_kind classify(int err, const char *text) {
  if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
      err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
      has(text, "SASL authentication error") || has(text, "Authentication failed"))
    return CAUSE_LOGIN;
  if (err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
      err == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED ||
      err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
      err == RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    return CAUSE_DENIED;
  if (has(text, "Disconnected"))
    return CAUSE_NONE; /* a broker that went away mid-handshake (a restart): transport */
  if (err == RD_KAFKA_RESP_ERR__SSL || has(text, "SSL handshake failed") ||
      has(text, "certificate verify failed")) {
    if (has(text, "hostname mismatch") || has(text, "IP address mismatch"))
      return CAUSE_TLS_NAME;
    if (has(text, "local issuer") || has(text, "self-signed") || has(text, "self signed") ||
        has(text, "verify the first certificate") || has(text, "could not be verified") ||
        has(text, "unknown ca"))
      return CAUSE_TLS_CA;
    return CAUSE_TLS;
  }
  return CAUSE_NONE;
}

/* "sasl_ssl://127.0.0.1:9093/bootstrap: ..." -> "127.0.0.1:9093" */
static void broker_of(const char *text, char *out, size_t outlen) {
  out[0] = 0;
  const char *s = strstr(text, "://");
  if (!s)
    return;
  s += 3;
  size_t n = strcspn(s, "/ :");
  if (s[n] == ':')
    n += 1 + strcspn(s + n + 1, "/ ");
  if (n && n < outlen)
    snprintf(out, outlen, "%.*s", (int)n, s);
}

static void cause_note(const rd_kafka_t *rk, int err, const char *text) {
  kafka_cause_kind kind = classify(err, text);
  if (kind == CAUSE_NONE)
    return;
  const char *name = rd_kafka_name(rk);
  pthread_mutex_lock(&cause_lock);
  for (int i = 0; i < CAUSE_SLOTS; i++)
    if (causes[i].kind && !strcmp(causes[i].client, name)) {
      pthread_mutex_unlock(&cause_lock);
      return; /* the first cause stays */
    }
  int i = cause_next++ % CAUSE_SLOTS;
  snprintf(causes[i].client, sizeof causes[i].client, "%s", name);
  causes[i].kind = kind;
  broker_of(text, causes[i].broker, sizeof causes[i].broker);
  kafka_redact(text, causes[i].detail, sizeof causes[i].detail);
  pthread_mutex_unlock(&cause_lock);
}

kafka_cause_kind kafka_cause(const rd_kafka_t *rk, const char *brokers, char *out, size_t outlen) {
  const char *name = rd_kafka_name(rk);
  kafka_cause_kind kind = CAUSE_NONE;
  char broker[128] = "", detail[300] = "";
  pthread_mutex_lock(&cause_lock);
  for (int i = 0; i < CAUSE_SLOTS; i++)
    if (causes[i].kind && !strcmp(causes[i].client, name)) {
      kind = causes[i].kind;
      snprintf(broker, sizeof broker, "%s", causes[i].broker);
      snprintf(detail, sizeof detail, "%s", causes[i].detail);
    }
  pthread_mutex_unlock(&cause_lock);
  if (!kind)
    return CAUSE_NONE;
  if (!broker[0])
    snprintf(broker, sizeof broker, "%s", brokers ? brokers : "the brokers");
  char user[128] = "";
  size_t size = sizeof user;
  if (rd_kafka_conf_get(rd_kafka_conf((rd_kafka_t *)rk), "sasl.username", user, &size) !=
      RD_KAFKA_CONF_OK)
    user[0] = 0;
  char host[128];
  snprintf(host, sizeof host, "%s", broker);
  char *colon = strrchr(host, ':');
  if (colon)
    *colon = 0;
  switch (kind) {
  case CAUSE_LOGIN:
    if (user[0])
      snprintf(out, outlen,
               "Kafka refused the login for user %s at %s (SASL authentication failed: check "
               "sasl.username/sasl.password in %s)",
               user, broker, conf_origin);
    else
      snprintf(out, outlen,
               "Kafka refused the login at %s (SASL authentication failed: check sasl.mechanisms, "
               "sasl.username and sasl.password in %s)",
               broker, conf_origin);
    break;
  case CAUSE_TLS_CA:
    snprintf(out, outlen,
             "the TLS certificate of the broker at %s is not signed by a CA we trust (set "
             "ssl.ca.location to the CA's PEM file in %s)",
             broker, conf_origin);
    break;
  case CAUSE_TLS_NAME:
    snprintf(out, outlen,
             "the TLS certificate of the broker at %s is for other names than %s (check the "
             "bootstrap address or ssl.endpoint.identification.algorithm)",
             broker, host);
    break;
  case CAUSE_TLS:
    snprintf(out, outlen, "TLS with the broker at %s failed: %s (check the ssl.* settings in %s)",
             broker, detail, conf_origin);
    break;
  default:
    snprintf(out, outlen, "not authorized: %s (ask the cluster's administrators for ACLs)", detail);
    break;
  }
  return kind;
}

static void kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
  if (level <= 4)
    cause_note(rk, 0, buf);
  route(rk, level, fac, buf);
}

static void kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  (void)opaque;
  cause_note(rk, err, reason);
  route(rk, 3, rd_kafka_err2name(err), reason);
}

void kafka_error_event(rd_kafka_t *rk, int err, const char *reason) {
  kafka_error(rk, err, reason, NULL);
}

void kafka_log_hold(void) {
  atomic_store(&log_held, 1);
}

int kafka_denied(rd_kafka_resp_err_t e, const char *what, const char *topic, const char *group,
                 char *out, size_t outlen) {
  if (e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    snprintf(out, outlen, "not authorized to %s topic %s (ask for ACLs: %s on topic %s%s%s)", what,
             topic, !strcmp(what, "read") ? "Read and Describe" : "Describe and Write", topic,
             group ? ", Read on group " : "", group ? group : "");
  else if (e == RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED)
    snprintf(out, outlen, "not authorized to use group %s (ask for ACLs: Read on group %s)",
             group ? group : "?", group ? group : "?");
  else if (e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED)
    snprintf(out, outlen,
             "not authorized to %s topic %s: the cluster refused (ask for ACLs: Create on topic "
             "%s, or have the topic made for you)",
             what, topic, topic);
  else
    return -1;
  kafka_log_hold(); /* the refusal is the one line: what librdkafka says on closing is noise */
  return 0;
}

/* OpenSSL's verdict on each certificate of the broker's chain, kept as it
 * is; librdkafka 2.0 says only "certificate verify failed", so the reason
 * (X509_V_ERR_* of <openssl/x509_vfy.h>, stable numbers) is noted here. */
static int on_cert_verify(rd_kafka_t *rk, const char *broker_name, int32_t broker_id,
                          int *x509_error, int depth, const char *buf, size_t size, char *errstr,
                          size_t errstr_size, void *opaque) {
  (void)broker_id, (void)depth, (void)buf, (void)size, (void)opaque;
  if (*x509_error == 0)
    return 1;
  const char *why;
  switch (*x509_error) {
  case 62: /* X509_V_ERR_HOSTNAME_MISMATCH */
  case 64: /* X509_V_ERR_IP_ADDRESS_MISMATCH */
    why = "hostname mismatch";
    break;
  case 2:  /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT */
  case 18: /* X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT */
  case 19: /* X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN */
  case 20: /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY */
  case 21: /* X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE */
    why = "unknown CA";
    break;
  case 9:  /* X509_V_ERR_CERT_NOT_YET_VALID */
  case 10: /* X509_V_ERR_CERT_HAS_EXPIRED */
    why = "certificate expired or not yet valid";
    break;
  default:
    why = "rejected";
    break;
  }
  snprintf(errstr, errstr_size, "certificate verify failed: %s (X509 error %d)", why, *x509_error);
  char note[400];
  snprintf(note, sizeof note, "ssl://%s/: %s", broker_name, errstr);
  cause_note(rk, RD_KAFKA_RESP_ERR__SSL, note);
  return 0;
}

/* ---- configuration ---- */

static int conf_set_item(rd_kafka_conf_t *conf, const char *item, const char *prefix, char *err,
                         size_t errlen) {
  char shown[400], why[512], clean[512];
  const char *eq = strchr(item, '=');
  if (!eq || eq == item) {
    kafka_conf_describe(item, shown, sizeof shown);
    snprintf(err, errlen, "%s needs key=value, got '%s'", prefix, shown);
    return -1;
  }
  char key[256];
  if ((size_t)(eq - item) >= sizeof key) {
    snprintf(err, errlen, "%s: a key of %d characters is no librdkafka property", prefix,
             (int)(eq - item));
    return -1;
  }
  snprintf(key, sizeof key, "%.*s", (int)(eq - item), item);
  int secret = kafka_conf_is_secret(key, strlen(key));
  if (secret)
    secret_note(eq + 1);
  if (!strcmp(key, "debug") || !strcmp(key, "log_level"))
    atomic_store(&log_verbose, 1);
  if (rd_kafka_conf_set(conf, key, eq + 1, why, sizeof why) != RD_KAFKA_CONF_OK) {
    kafka_conf_describe(item, shown, sizeof shown);
    kafka_redact(why, clean, sizeof clean);
    if (secret && eq[1] && strstr(clean, eq + 1))
      snprintf(clean, sizeof clean, "not a valid value");
    snprintf(err, errlen, "%s %s: %s", prefix, shown, clean);
    return -1;
  }
  return 0;
}

int kafka_conf_apply(rd_kafka_conf_t *conf, const char *brokers, const char *const *items,
                     int count, char *err, size_t errlen) {
  char why[512];
  rd_kafka_conf_set_log_cb(conf, kafka_log);
  rd_kafka_conf_set_error_cb(conf, kafka_error);
  rd_kafka_conf_set_ssl_cert_verify_cb(conf, on_cert_verify); /* OK or no TLS at all */
  if (brokers &&
      rd_kafka_conf_set(conf, "bootstrap.servers", brokers, why, sizeof why) != RD_KAFKA_CONF_OK) {
    snprintf(err, errlen, "bootstrap.servers: %s", why);
    return -1;
  }
  for (int i = 0; i < count; i++)
    if (conf_set_item(conf, items[i], "-X", err, errlen) < 0)
      return -1;
  return 0;
}

int kafka_conf_check(const char *const *items, int count, char *err, size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int rc = kafka_conf_apply(conf, NULL, items, count, err, errlen);
  rd_kafka_conf_destroy(conf);
  return rc;
}

int kafka_conf_check_item(const char *item, const char *prefix, char *err, size_t errlen) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  int rc = conf_set_item(conf, item, prefix, err, errlen);
  rd_kafka_conf_destroy(conf);
  return rc;
}

/* In steps of a second, so that a cause no retry mends (a refused login, an
 * untrusted certificate) ends the wait at once. */
const rd_kafka_metadata_t *kafka_metadata_fetch(rd_kafka_t *rk, const char *brokers, int timeout_ms,
                                                char *err, size_t errlen) {
  const rd_kafka_metadata_t *md = NULL;
  double until = clock_seconds() + timeout_ms / 1000.0;
  rd_kafka_resp_err_t rc;
  for (;;) {
    double left = until - clock_seconds();
    int step = left > 1.0 ? 1000 : left > 0.05 ? (int)(left * 1000) : 50;
    rc = rd_kafka_metadata(rk, 1, NULL, &md, step);
    if (rc == RD_KAFKA_RESP_ERR_NO_ERROR) {
      atomic_store(&kafka_reached, 1);
      return md;
    }
    if (kafka_cause(rk, brokers, err, errlen) != CAUSE_NONE) {
      kafka_log_hold();
      return NULL;
    }
    if (clock_seconds() >= until)
      break;
  }
  char last[400];
  pthread_mutex_lock(&log_lock);
  snprintf(last, sizeof last, "%s", last_quiet);
  pthread_mutex_unlock(&log_lock);
  snprintf(err, errlen,
           "cannot reach Kafka at %s within %d s: %s%s%s%s (check that it runs and "
           "that security.protocol matches its listener)",
           brokers, timeout_ms / 1000, rd_kafka_err2str(rc), last[0] ? " (" : "", last,
           last[0] ? ")" : "");
  return NULL;
}

const rd_kafka_metadata_topic_t *kafka_metadata_topic(const rd_kafka_metadata_t *md,
                                                      const char *topic) {
  for (int i = 0; i < md->topic_cnt; i++)
    if (!strcmp(md->topics[i].topic, topic))
      return &md->topics[i];
  return NULL;
}

static int create_topic(rd_kafka_t *rk, const kafka_topic_spec *o, char *err, size_t errlen) {
  char why[512];
  rd_kafka_NewTopic_t *nt =
      rd_kafka_NewTopic_new(o->name, o->partitions, o->replication_factor, why, sizeof why);
  if (!nt) {
    snprintf(err, errlen, "cannot create topic %s: %s", o->name, why);
    return -1;
  }
  if (o->compacted &&
      rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact") != RD_KAFKA_RESP_ERR_NO_ERROR) {
    snprintf(err, errlen, "cannot create topic %s: cleanup.policy rejected", o->name);
    rd_kafka_NewTopic_destroy(nt);
    return -1;
  }
  for (const char *const *kv = o->config; kv && kv[0] && kv[1]; kv += 2)
    if (rd_kafka_NewTopic_set_config(nt, kv[0], kv[1]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      snprintf(err, errlen, "cannot create topic %s: %s rejected", o->name, kv[0]);
      rd_kafka_NewTopic_destroy(nt);
      return -1;
    }
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(ao, 10000, why, sizeof why);
  rd_kafka_AdminOptions_set_request_timeout(ao, 15000, why, sizeof why);
  rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
  rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
  int rc = 0;
  if (!ev) {
    snprintf(err, errlen, "creating topic %s timed out", o->name);
    rc = -1;
  } else if (rd_kafka_event_error(ev)) {
    snprintf(err, errlen, "creating topic %s: %s", o->name, rd_kafka_event_error_string(ev));
    rc = -1;
  } else {
    size_t n;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
      rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
      if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        const char *msg = rd_kafka_topic_result_error_string(res[i]);
        if (e == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
            e == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED)
          /* the topic is not in the metadata this user may see: either it
           * is missing and may not be made, or it is there but hidden */
          snprintf(err, errlen,
                   "not authorized to use topic %s (ask for ACLs: Describe and Write or Read on "
                   "topic %s, and Create when regstream should make it)",
                   o->name, o->name);
        else
          snprintf(err, errlen, "creating topic %s: %s", o->name, msg ? msg : rd_kafka_err2str(e));
        rc = -1;
      }
    }
  }
  if (ev)
    rd_kafka_event_destroy(ev);
  rd_kafka_AdminOptions_destroy(ao);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  return rc;
}

int kafka_topic_denied(rd_kafka_t *rk, const char *topic) {
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  if (!rkt)
    return 0;
  const rd_kafka_metadata_t *md = NULL;
  int denied = 0;
  if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const rd_kafka_metadata_topic_t *t = kafka_metadata_topic(md, topic);
    denied = t && t->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
    rd_kafka_metadata_destroy(md);
  }
  rd_kafka_topic_destroy(rkt);
  return denied;
}

/* Makes the topic unless it exists; then waits until every partition has a
 * leader. A topic this user may create (Create on the cluster) but not see
 * is refused once made: asked for by name (which would have made it with
 * the broker's defaults before), the broker says it is not authorized. */
int kafka_topic_ensure(rd_kafka_t *rk, const char *brokers, const kafka_topic_spec *o,
                       const char *note_command, int *created, char *err, size_t errlen) {
  const rd_kafka_metadata_t *md = kafka_metadata_fetch(rk, brokers, 10000, err, errlen);
  if (!md)
    return -1;
  const rd_kafka_metadata_topic_t *t = kafka_metadata_topic(md, o->name);
  int exists = t && t->err == RD_KAFKA_RESP_ERR_NO_ERROR && t->partition_cnt > 0;
  if (exists && t->partition_cnt != o->partitions && note_command)
    log_cmd_fields(LOG_WARN, note_command,
                   json_pack("{s:s,s:i,s:i}", "topic", o->name, "partitions", t->partition_cnt,
                             "partitions_asked", o->partitions),
                   "topic %s exists with %d partitions; using them", o->name, t->partition_cnt);
  rd_kafka_metadata_destroy(md);
  *created = 0;
  if (exists)
    return 0;
  if (create_topic(rk, o, err, errlen) < 0)
    return -1;
  *created = 1;
  for (double until = clock_seconds() + 15; clock_seconds() < until;) {
    md = kafka_metadata_fetch(rk, brokers, 5000, err, errlen);
    if (!md)
      return -1;
    t = kafka_metadata_topic(md, o->name);
    int ready = t && t->err == 0 && t->partition_cnt > 0;
    if (!t && kafka_topic_denied(rk, o->name)) {
      rd_kafka_metadata_destroy(md);
      kafka_denied(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, "write to", o->name, NULL, err,
                   errlen);
      return -1;
    }
    for (int p = 0; ready && p < t->partition_cnt; p++)
      ready = t->partitions[p].err == 0 && t->partitions[p].leader >= 0;
    rd_kafka_metadata_destroy(md);
    if (ready)
      return 0;
    struct timespec pause = {0, 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  snprintf(err, errlen, "topic %s was created but has no leaders after 15 s", o->name);
  return -1;
}

int kafka_conf_add(const char **items, int *count, const char *item, char *err, size_t errlen) {
  if (*count == KAFKA_MAX_CONF) {
    snprintf(err, errlen, "too many -X options (at most %d)", KAFKA_MAX_CONF);
    return -1;
  }
  if (kafka_conf_check_item(item, "-X", err, errlen) < 0)
    return -1;
  items[(*count)++] = item;
  return 0;
}

/* ---- the Kafka mode's clients ---- */

/* Every row and dead letter must reach the broker: one that librdkafka gave
 * up on (message.timeout.ms) stops the run, whose restart sends it again. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
  (void)rk;
  if (!m->err)
    return;
  char why[400];
  snprintf(why, sizeof why,
           "a message to %s was not delivered: %s (restart when the brokers "
           "are reachable; nothing is lost)",
           rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
  kafka_fail(opaque, why);
}

/* The input consumer's error events (all brokers down, transport): trouble
 * reported while librdkafka retries; a fatal one (e.g. a fenced static
 * member), a refused login, an untrusted certificate or a denied request
 * stops the run. Routed and noted as every client's are (kafka_error). */
static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque) {
  kafka_error_event(rk, err, reason);
  kafka_mode *km = opaque;
  char cause[600];
  if (kafka_cause_fatal(km, rk, cause, sizeof cause)) {
    kafka_fail(km, cause); /* a refused login or certificate: no retry mends it */
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__FATAL) {
    char fatal[300], why[500];
    rd_kafka_fatal_error(rk, fatal, sizeof fatal);
    snprintf(why, sizeof why, "fatal Kafka error: %s", fatal);
    kafka_fail(opaque, why);
    return;
  }
  kafka_trouble(opaque, reason);
}

/* librdkafka (2.0) stops fetching a partition whose local queue holds
 * queued.min.messages (100000 by default), so the next fetch may name only
 * partitions at their end, which the broker holds for fetch.wait.max.ms
 * (500 ms by default) while the paused ones drain. A deeper queue (still
 * bounded by queued.max.messages.kbytes) and a 50 ms hold took the
 * reprocessing rate from 0.4 to 1.4-1.8 M messages/s here
 * (bench/results/kafka.md), at 20 idle fetches a second. A subscription
 * to a topic the broker's metadata does not show yet (the partials topic
 * just created) is looked at again on the next refresh: 10 s, not 5 min.
 * Both groups (the input's and "<group>.merge") rebalance cooperatively
 * (cooperative-sticky): a joining or leaving instance moves only the
 * partitions it takes or gives, the others go on (kafka/rebalance.c,
 * kafka/merger.c). -X partition.assignment.strategy=range (or roundrobin),
 * applied after these, brings back the eager protocol, which stops every
 * partition on every rebalance. With librdkafka 2.0 a cooperative rebalance
 * can drop messages of a kept partition from a batch being taken: the
 * workers read such a gap again, also one that only its end-of-partition
 * event shows (kafka/gap.h). */
static const char *const consumer_defaults[] = {"enable.partition.eof=true",
                                                "auto.offset.reset=earliest",
                                                "fetch.max.bytes=52428800",
                                                "max.partition.fetch.bytes=4194304",
                                                "queued.max.messages.kbytes=262144",
                                                "fetch.wait.max.ms=50",
                                                "queued.min.messages=1000000",
                                                "topic.metadata.refresh.interval.ms=10000",
                                                "partition.assignment.strategy=cooperative-sticky"};
/* Every row, mark and dead letter on all in-sync replicas, in order, once. */
static const char *const producer_defaults[] = {"linger.ms=20", "compression.type=lz4",
                                                "enable.idempotence=true", "acks=all",
                                                "queue.buffering.max.messages=1000000"};

rd_kafka_t *client_new(kafka_mode *km, client_role role, char *err, size_t errlen) {
  const kafka_run_options *o = km->opt;
  rd_kafka_type_t type = role == CLIENT_PRODUCER ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER;
  const char *const *defaults = role == CLIENT_PRODUCER ? producer_defaults : consumer_defaults;
  int n = role == CLIENT_PRODUCER ? (int)(sizeof producer_defaults / sizeof *producer_defaults)
                                  : (int)(sizeof consumer_defaults / sizeof *consumer_defaults);
  char merge_group[600];
  snprintf(merge_group, sizeof merge_group, "%s.merge", o->group);
  const char *group = role == CLIENT_INPUT ? o->group : role == CLIENT_MERGER ? merge_group : NULL;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char why[512];
  if (kafka_conf_apply(conf, o->brokers, defaults, n, err, errlen) < 0 ||
      (group && rd_kafka_conf_set(conf, "group.id", group, why, sizeof why) != RD_KAFKA_CONF_OK) ||
      /* The input resumes at a snapshot's offset: one outside the log is an
       * error to report (the worker), never a silent jump. */
      (role == CLIENT_INPUT && rd_kafka_conf_set(conf, "auto.offset.reset", "error", why,
                                                 sizeof why) != RD_KAFKA_CONF_OK) ||
      /* The merger reads from the beginning: its committed offsets say
       * nothing. And librdkafka's automatic commit of the partitions it
       * unassigns, in a close that met a cooperative rebalance (the other
       * instances leaving), failed ("Specified group generation id is not
       * valid") and held the close until the session expired (45 s, past
       * CLOSE_MERGER_SECONDS in run.c). The input consumer's commits (lag
       * monitoring) stay librdkafka's: manual ones that meet a rebalance
       * make it drop its whole assignment as lost. */
      (role == CLIENT_MERGER && rd_kafka_conf_set(conf, "enable.auto.commit", "false", why,
                                                  sizeof why) != RD_KAFKA_CONF_OK) ||
      (role == CLIENT_INPUT && observe_client_conf(km, conf, err, errlen) < 0) ||
      kafka_conf_apply(conf, NULL, o->conf, o->conf_count, err, errlen) < 0) {
    if (group && !err[0])
      snprintf(err, errlen, "group.id: %s", why);
    rd_kafka_conf_destroy(conf);
    return NULL;
  }
  if (role == CLIENT_INPUT) {
    rd_kafka_conf_set_rebalance_cb(conf, observe_rebalance_input); /* rebalance_input, counted */
    rd_kafka_conf_set_error_cb(conf, on_consumer_error);
  } else if (role == CLIENT_MERGER) {
    rd_kafka_conf_set_rebalance_cb(conf, merger_rebalance);
    rd_kafka_conf_set_error_cb(conf, on_consumer_error);
  } else {
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  }
  rd_kafka_conf_set_opaque(conf, km);
  rd_kafka_t *rk = kafka_client_new(type, conf, "client", err, errlen);
  if (!rk)
    return NULL;
  if (type == RD_KAFKA_CONSUMER)
    rd_kafka_poll_set_consumer(rk);
  return rk;
}

int client_subscribe(rd_kafka_t *rk, const char *topic, char *err, size_t errlen) {
  rd_kafka_topic_partition_list_t *t = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(t, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, t);
  rd_kafka_topic_partition_list_destroy(t);
  if (e) {
    snprintf(err, errlen, "cannot subscribe to %s: %s", topic, rd_kafka_err2str(e));
    return -1;
  }
  return 0;
}

int client_prepare_topics(kafka_mode *km, char *err, size_t errlen) {
  const kafka_run_options *o = km->opt;
  rd_kafka_t *rk = km->clients.producer;
  const rd_kafka_metadata_t *md = kafka_metadata_fetch(rk, o->brokers, 10000, err, errlen);
  if (!md)
    return -1;
  const rd_kafka_metadata_topic_t *t = kafka_metadata_topic(md, o->topic);
  int inputs = t && !t->err ? t->partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  if (inputs > MAX_PARTITIONS) {
    snprintf(err, errlen, "input topic %s has %d partitions; at most %d are supported", o->topic,
             inputs, MAX_PARTITIONS);
    return -1;
  }
  if (inputs <= 0) {
    /* asking for it by name would tell a hidden topic from a missing one,
     * but through the producer it would also make it (auto-creation) */
    snprintf(err, errlen,
             "input topic %s does not exist at %s, or this user may not see it (create it, e.g. "
             "with regstream produce, or ask for ACLs: Read and Describe on topic %s, Read on "
             "group %s)",
             o->topic, o->brokers, o->topic, o->group);
    return -1;
  }
  int rf = o->replication_factor ? o->replication_factor : -1;
  const kafka_topic_spec specs[] = {{o->partials_topic, OUTPUT_PARTITIONS, rf, 1, NULL},
                                    {o->output_topic, OUTPUT_PARTITIONS, rf, 1, NULL},
                                    {o->dead_letter_topic, OUTPUT_PARTITIONS, rf, 0, NULL}};
  for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
    int created;
    if (kafka_topic_ensure(rk, o->brokers, &specs[i], NULL, &created, err, errlen) < 0)
      return -1;
  }
  md = kafka_metadata_fetch(rk, o->brokers, 10000, err, errlen);
  if (!md)
    return -1;
  t = kafka_metadata_topic(md, o->partials_topic);
  int partials = t && !t->err ? t->partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  if (partials <= 0 || partials > MERGE_MAX_PARTIALS) {
    snprintf(err, errlen, "partials topic %s has %d partitions (1 to %d are supported)",
             o->partials_topic, partials, MERGE_MAX_PARTIALS);
    return -1;
  }
  km->clients.partials_partitions = partials;
  km->clients.input_partitions = inputs;
  return 0;
}

/* In one request per broker, through the producer: a consumer's connection
 * may be holding a fetch for fetch.wait.max.ms, and a broker answers a
 * connection in order. */
int client_log_ends(kafka_mode *km, const char *topic, const int32_t *parts, int n, int64_t *ends) {
  if (n == 0)
    return 0;
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
  for (int i = 0; i < n; i++) /* a timestamp of -1: the latest offset */
    rd_kafka_topic_partition_list_add(list, topic, parts[i])->offset = RD_KAFKA_OFFSET_END;
  int ok =
      rd_kafka_offsets_for_times(km->clients.producer, list, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR;
  for (int i = 0; ok && i < list->cnt; i++) {
    ok = !list->elems[i].err && list->elems[i].offset >= 0;
    ends[i] = list->elems[i].offset;
  }
  rd_kafka_topic_partition_list_destroy(list);
  return ok ? 0 : -1;
}

void client_produce(kafka_mode *km, const char *topic, int32_t partition, const char *key,
                    size_t klen, const uint8_t *value, size_t vlen) {
  rd_kafka_resp_err_t e;
  double give_up = 0;
  do {
    e = rd_kafka_producev(km->clients.producer, RD_KAFKA_V_TOPIC(topic),
                          RD_KAFKA_V_PARTITION(partition), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)value, vlen),
                          RD_KAFKA_V_END);
    /* A full queue drains as the brokers acknowledge; once the run has
     * failed (they stopped answering), or after QUEUE_FULL_SECONDS, nothing
     * more needs to leave. */
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(km->clients.producer, 10);
      double now = clock_seconds();
      if (give_up == 0)
        give_up = now + QUEUE_FULL_SECONDS;
      else if (now >= give_up) {
        kafka_fail(km, "the producer's queue stayed full for 60 s: the brokers do not take rows "
                       "(rerun when they are reachable; the snapshots keep the work)");
        return;
      }
    }
  } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && !kafka_failed(km));
  if (e && !kafka_failed(km))
    kafka_fail(km, "cannot produce rollup rows to Kafka");
}

rd_kafka_t *kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                             char *err, size_t errlen) {
  char why[512];
  rd_kafka_t *rk = rd_kafka_new(type, conf, why, sizeof why);
  if (!rk) {
    char shown[sizeof why];
    kafka_redact(why, shown, sizeof shown);
    snprintf(err, errlen, "cannot start a Kafka %s: %s", what, shown);
    rd_kafka_conf_destroy(conf);
  }
  return rk;
}

/* The seek is queued to the partition at once (its version barrier with
 * it: what was fetched before is dropped from then on); the call then only
 * waits for it to be served. librdkafka before 2.1 waits a thousandth of
 * the time asked (5 ms of 5 s), so a busy machine gets "Timed out waiting
 * for 1 remaining partition seek(s)" for a seek that is done a moment
 * later: not a failure (it failed kafka_run's two --exit-at-eof instances
 * once in five runs, on a worker's read-again after a cooperative
 * rebalance). */
void client_seek(kafka_mode *km, rd_kafka_t *rk, const char *topic, int32_t p, int64_t offset,
                 const char *what) {
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic, p)->offset = offset;
  rd_kafka_error_t *e = rd_kafka_seek_partitions(rk, list, 5000);
  if (e && rd_kafka_error_code(e) == RD_KAFKA_RESP_ERR__TIMED_OUT) {
    rd_kafka_error_destroy(e); /* queued, still to be served */
    e = NULL;
  } else if (!e && list->elems[0].err && list->elems[0].err != RD_KAFKA_RESP_ERR__IN_PROGRESS) {
    latch_setf(&km->failure, "%s: %s", what, rd_kafka_err2str(list->elems[0].err));
  }
  kafka_fail_error(km, e, what);
  rd_kafka_topic_partition_list_destroy(list);
}

int client_log_start(kafka_mode *km, const char *topic, int32_t p, int64_t *start) {
  int64_t low = -1, high = -1;
  rd_kafka_resp_err_t e =
      rd_kafka_query_watermark_offsets(km->clients.producer, topic, p, &low, &high, 10000);
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR || low < 0)
    return -1;
  *start = low;
  return 0;
}
