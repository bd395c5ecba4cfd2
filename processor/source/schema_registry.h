/* schema_registry.h — writer schemas by Confluent schema id: a schema_source
 * maps an id to a resolution plan (avro/decode.h), from a Schema Registry's
 * REST API (GET {url}/schemas/ids/{id}, libcurl, bounded by timeouts) or from
 * a local directory of <id>.avsc files.
 *
 * Every id is looked up once and its plan built once; the answer is cached
 * for the life of the source. An id the registry or the directory does not
 * know is remembered as unknown for unknown_ttl_ms, a failed fetch (timeout,
 * connection refused, HTTP 5xx) for retry_ms, so a stream of bad ids costs
 * one fetch per id per period, not one per message.
 *
 * Thread safety: schema_source_lookup may be called from any number of
 * threads. Known ids are served from a fixed open-addressed table of
 * published, immutable entries read with acquire loads: no lock on the hot
 * path. Misses take a mutex and fetch (one fetch at a time). When the table
 * is full (SCHEMA_SOURCE_SLOTS ids), further ids are still answered, but
 * fetched each time under the mutex. */
#ifndef REGSTREAM_SCHEMA_REGISTRY_H
#define REGSTREAM_SCHEMA_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "avro/decode.h"

enum { SCHEMA_SOURCE_SLOTS = 4096 };

typedef struct schema_source schema_source;

typedef enum schema_status {
  SCHEMA_FOUND = 0,
  SCHEMA_UNKNOWN,     /* 404 / no such file */
  SCHEMA_UNAVAILABLE, /* registry unreachable, timed out, 5xx, unreadable file */
  SCHEMA_INVALID,     /* the schema does not parse or resolve against the reader */
} schema_status;

typedef struct schema_source_options {
  long connect_timeout_ms; /* 0 = 2000 */
  long timeout_ms;         /* whole request; 0 = 5000 */
  long unknown_ttl_ms;     /* how long an unknown id stays unknown; 0 = 60000 */
  long retry_ms;           /* how long a failed fetch is not retried; 0 = 1000 */
  /* A secured registry (NULL: not used), from the --config keys in brackets.
   * user_info and bearer_token and key_password are secrets: never printed. */
  const char *basic_auth_user_info; /* "user:password" [schema.registry.basic.auth.user.info] */
  const char *bearer_token;         /* [schema.registry.bearer.auth.token] */
  const char *ca_location;          /* PEM CA bundle [schema.registry.ssl.ca.location] */
  const char *
      certificate_location; /* client certificate, PEM [schema.registry.ssl.certificate.location] */
  const char *key_location; /* its private key, PEM [schema.registry.ssl.key.location] */
  const char *key_password; /* [schema.registry.ssl.key.password] */
} schema_source_options;

/* A registry at url (http://host:port[/path]); opts may be NULL. Opening does
 * not contact the registry. NULL with a one-line reason in err. */
schema_source *schema_source_open_registry(const char *url, const schema_source_options *opts,
                                           char *err, size_t errlen);
/* A directory of <id>.avsc files (read on first use of each id). NULL with a
 * reason when dir is not a readable directory. */
schema_source *schema_source_open_dir(const char *dir, const schema_source_options *opts, char *err,
                                      size_t errlen);
/* Frees the source and every plan it handed out. No lookup may be running. */
void schema_source_free(schema_source *s);

/* The plan for id (owned by the source, valid until schema_source_free), or
 * NULL with *status saying why (and a one-line reason in err when err is not
 * NULL; on the hot path pass NULL). */
const pm_plan *schema_source_lookup(schema_source *s, uint32_t id, schema_status *status, char *err,
                                    size_t errlen);

/* Number of fetches (HTTP requests or file reads) made so far; for tests. */
uint64_t schema_source_fetches(const schema_source *s);

const char *schema_status_name(schema_status st);

#endif
