/* client.h — the small librdkafka helpers every Kafka client of the program
 * shares (produce, export, the Kafka mode of run): configuration from
 * "key=value" items, which of them are secret (never printed), librdkafka's
 * log lines and error events routed to util/log.h, the first cause per client
 * that no retry mends (a refused login, an untrusted certificate, a missing
 * ACL), a reachability check, and topics made on demand. */
#ifndef REGSTREAM_KAFKA_CLIENT_H
#define REGSTREAM_KAFKA_CLIENT_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

enum { KAFKA_MAX_CONF = 256 }; /* -X and --config items together */

/* Shared by every Kafka client of the program: set "key=value" items on conf
 * (and bootstrap.servers first). 0, or -1 with a one-line reason. */
int kafka_conf_apply(rd_kafka_conf_t *conf, const char *brokers, const char *const *items,
                     int count, char *err, size_t errlen);
/* The one rule for secrets: a key is secret when its name holds password,
 * passwd, pasw, secret, token, credential, jaas, oauthbearer.config,
 * keystore, key.pem, private, user.info or userinfo (any case), when it is a
 * schema.registry.* key other than url and the ssl.*.location paths, or when
 * librdkafka does not know it (a mistyped secret such as sasl.pasword).
 * key need not be NUL-terminated: len bytes. */
int kafka_conf_is_secret(const char *key, size_t len);
/* item ("key=value") as it may be printed: "key=[hidden]" for a secret. */
void kafka_conf_describe(const char *item, char *out, size_t outlen);
/* in with every secret value set so far (4 characters or more) replaced by
 * "[hidden]". */
void kafka_redact(const char *in, char *out, size_t outlen);

/* rd_kafka_new with conf (taken over either way); NULL with "cannot start
 * a Kafka WHAT: why" (redacted) in err. */
rd_kafka_t *kafka_client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, const char *what,
                             char *err, size_t errlen);
/* Where the settings came from, for "check ... in WHAT" (default "the -X
 * options"; e.g. "--config FILE"). */
void kafka_conf_origin(const char *what);
/* One item checked on its own; errors start with prefix (e.g. "-X",
 * "FILE:LINE:"). */
int kafka_conf_check_item(const char *item, const char *prefix, char *err, size_t errlen);

/* What a client met that no retry mends (first one per client). */
typedef enum kafka_cause_kind {
  CAUSE_NONE = 0,
  CAUSE_LOGIN,    /* SASL authentication failed */
  CAUSE_TLS_CA,   /* the broker's certificate is not signed by a trusted CA */
  CAUSE_TLS_NAME, /* ... is for other names than the one connected to */
  CAUSE_TLS,      /* another TLS handshake failure */
  CAUSE_DENIED,   /* an authorization error */
} kafka_cause_kind;
/* The client's cause as one sentence saying what to do (brokers: the
 * bootstrap address when the message named none), or CAUSE_NONE. */
kafka_cause_kind kafka_cause(const rd_kafka_t *rk, const char *brokers, char *out, size_t outlen);
/* For a client that installs its own error callback: what kafka_conf_apply's
 * does (note the cause, print the line). */
void kafka_error_event(rd_kafka_t *rk, int err, const char *reason);
/* From now on librdkafka's lines are held back (unless the user asked for
 * debug or log_level), as before a broker first answered: the program is
 * about to fail with a one-line reason of its own (a refused login, a
 * missing ACL), and what the clients say while they close (a transport
 * failure of the torn-down connection) would only blur it. */
void kafka_log_hold(void);
/* A denied request (TOPIC/GROUP/CLUSTER_AUTHORIZATION_FAILED) as "not
 * authorized to WHAT (ask for ACLs: ...)"; 0, or -1 when e is none of them.
 * group may be NULL. Holds librdkafka's lines back (kafka_log_hold). */
int kafka_denied(rd_kafka_resp_err_t e, const char *what, const char *topic, const char *group,
                 char *out, size_t outlen);

/* 1 when the broker answers TOPIC_AUTHORIZATION_FAILED for topic (a topic
 * missing from the metadata of all topics may be hidden, not missing). */
int kafka_topic_denied(rd_kafka_t *rk, const char *topic);

/* Whether "key=value" items are valid librdkafka settings (for option
 * parsing: a bad -X is a bad command line). */
int kafka_conf_check(const char *const *items, int count, char *err, size_t errlen);
/* Metadata for all topics within timeout_ms: the broker is reachable. NULL
 * with the client's cause (kafka_cause) in err as soon as there is one, else
 * "cannot reach Kafka at B within N s: ..." with librdkafka's last word. */
const rd_kafka_metadata_t *kafka_metadata_fetch(rd_kafka_t *rk, const char *brokers, int timeout_ms,
                                                char *err, size_t errlen);
/* The topic's entry in md, or NULL. */
const rd_kafka_metadata_topic_t *kafka_metadata_topic(const rd_kafka_metadata_t *md,
                                                      const char *topic);

/* Append one -X "key=value" item to items (KAFKA_MAX_CONF at most) after
 * checking it is a valid librdkafka setting. 0, or -1 with a one-line reason. */
int kafka_conf_add(const char **items, int *count, const char *item, char *err, size_t errlen);

/* A topic to make when it does not exist. */
typedef struct kafka_topic_spec {
  const char *name;
  int partitions;
  int replication_factor;    /* -1: the broker's default (default.replication.factor) */
  int compacted;             /* cleanup.policy=compact: a keyed upsert topic */
  const char *const *config; /* more topic settings: "key", "value", ..., NULL; may be NULL */
} kafka_topic_spec;

/* Make the topic when missing and wait until every partition has a leader.
 * *created tells whether it was made. note_command, when not NULL (e.g.
 * "produce"), is the command whose log line notes a topic that exists with
 * another partition count. 0, or -1 with a one-line reason. */
int kafka_topic_ensure(rd_kafka_t *rk, const char *brokers, const kafka_topic_spec *spec,
                       const char *note_command, int *created, char *err, size_t errlen);

#endif
