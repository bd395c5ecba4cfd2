/* schema_registry.h — writer schemas by Confluent schema id: a schema_source
 * maps an id to a resolution plan (avro/decode.h), from a Schema Registry's
 * REST API (GET {url}/schemas/ids/{id}, libcurl, bounded by timeouts) or from
 * a local directory of <id>.avsc files.
 *
 * What an answer means (the line between bad data and a failure of
 * something else):
 *   SCHEMA_FOUND        HTTP 200 with an Avro "schema" that resolves.
 *   SCHEMA_UNKNOWN      bad data: HTTP 404 whose JSON body has error_code
 *                       40403 (Confluent's "Schema not found"); no <id>.avsc.
 *   SCHEMA_INVALID      bad data: the schema does not parse or resolve
 *                       against the reader, or is not Avro (schemaType).
 *   SCHEMA_UNAVAILABLE  not an answer about the id, try later: connection
 *                       refused, timeouts, TLS failures, HTTP 5xx, 401/403
 *                       (credentials refused), a 404 without 40403 (a wrong
 *                       url path answers so: misconfigured, not unknown),
 *                       any other status, a 200 that is not a registry's
 *                       answer; an <id>.avsc that exists but cannot be read
 *                       (EACCES, EIO).
 *
 * Every id is looked up once and its plan built once; a found id is cached
 * for the life of the source and never fetched again. An unknown or invalid
 * id is remembered for unknown_ttl_ms; an unavailable answer only for
 * retry_ms and never as unknown, so a stream of bad ids costs one fetch per
 * id per period, not one per message, and an outage ends at the first fetch
 * that succeeds.
 *
 * Secrets (the user information of the url, basic_auth_user_info,
 * bearer_token, key_password) never appear in a reason: the url is shown
 * with "[hidden]@" in place of user:password (schema_source_where).
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
  SCHEMA_UNKNOWN,     /* 404 with error_code 40403 / no such file: bad data */
  SCHEMA_UNAVAILABLE, /* unreachable, timed out, TLS, 5xx, 401/403, other 404: try later */
  SCHEMA_INVALID,     /* the schema does not parse or resolve against the reader */
} schema_status;

typedef struct schema_source_options {
  long connect_timeout_ms; /* 0 = 2000 */
  long timeout_ms;         /* whole request; 0 = 5000 */
  long unknown_ttl_ms;     /* how long an unknown id stays unknown; 0 = 60000 */
  long retry_ms;           /* how long a failed fetch is not retried; 0 = 1000 */
  /* A secured registry (NULL: not used), from the --config keys in brackets.
   * user_info and bearer_token and key_password are secrets: never printed. */
  const char *basic_auth_user_info; /* "user:password" [schema.registry.basic.auth.user.info]:
                                       HTTP basic auth (wins over the url's user:pass@) */
  const char *bearer_token;         /* "Authorization: Bearer ..." when no basic auth is given
                                       [schema.registry.bearer.auth.token] */
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

/* The registry url as messages show it (user information "[hidden]"), or
 * the directory. */
const char *schema_source_where(const schema_source *s);

/* Number of fetches (HTTP requests or file reads) made so far; for tests. */
uint64_t schema_source_fetches(const schema_source *s);
/* Of them, those that did not answer (SCHEMA_UNAVAILABLE): the registry
 * failures a metric counts. Any thread. */
uint64_t schema_source_failures(const schema_source *s);

const char *schema_status_name(schema_status st);

#endif
