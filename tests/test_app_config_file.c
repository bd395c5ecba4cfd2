/* test_app_config_file.c — --config: the properties reader (kcat's rules:
 * trimmed lines, '#' comments, "\:" and "\=", the first '=' splits; white
 * space around '=' trimmed; errors naming file and line, never the line),
 * its items before the -X items (so -X wins), the schema.registry.* keys on
 * the registry options (the command line's URL wins, an unknown key is an
 * error naming it), the secret rule, secrets masked in errors, and the
 * warning for a secret file that others may read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/config_file.h"
#include "cli/options.h"
#include "kafka/client.h"

static char dir[256];

static const char *write_file(const char *name, const char *text, mode_t mode) {
  static char paths[16][512];
  static int used;
  char *p = paths[used++ % 16];
  snprintf(p, 512, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(p, mode), 0);
  return p;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/test_config_file.XXXXXX");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd);
}

static void entry_is(const config_file *cf, int i, const char *item, const char *value, int line) {
  assert_true(i < cf->count);
  assert_string_equal(cf->entries[i].item, item);
  assert_string_equal(cf->entries[i].value, value);
  assert_int_equal(cf->entries[i].key_len, strlen(item) - strlen(value) - 1);
  assert_int_equal(cf->entries[i].line, line);
}

static void test_parse_rules(void **state) {
  (void)state;
  static const char text[] = "# a comment\n"
                             "\n"
                             "   \t\n"
                             "  bootstrap.servers=a:1  \n"
                             "sasl.username = regstream\r\n"
                             "  # indented comment\n"
                             "k=v=w\n"
                             "path=c\\:\\\\x\\=y\n"
                             "empty=\n"
                             "a\\=b=c\n"
                             "last=no newline";
  config_file cf;
  char err[300];
  assert_int_equal(config_file_parse(&cf, text, sizeof text - 1, "f", err, sizeof err), 0);
  assert_int_equal(cf.count, 7);
  entry_is(&cf, 0, "bootstrap.servers=a:1", "a:1", 4);
  entry_is(&cf, 1, "sasl.username=regstream", "regstream", 5);
  entry_is(&cf, 2, "k=v=w", "v=w", 7);
  entry_is(&cf, 3, "path=c:\\\\x=y", "c:\\\\x=y", 8); /* only \: and \= are escapes */
  entry_is(&cf, 4, "empty=", "", 9);
  entry_is(&cf, 5, "a=b=c", "b=c", 10); /* unescaped first, then split (kcat) */
  entry_is(&cf, 6, "last=no newline", "no newline", 11);
  config_file_free(&cf);
  assert_int_equal(config_file_parse(&cf, "", 0, "f", err, sizeof err), 0);
  assert_int_equal(cf.count, 0);
  config_file_free(&cf);
}

static void test_parse_errors(void **state) {
  (void)state;
  config_file cf;
  char err[300];
  static const char no_eq[] = "a=1\nTopSecret123\n";
  assert_int_equal(config_file_parse(&cf, no_eq, sizeof no_eq - 1, "F", err, sizeof err), -1);
  assert_string_equal(err, "F:2: expected key=value");
  assert_null(strstr(err, "TopSecret"));
  assert_int_equal(cf.count, 0);
  config_file_free(&cf);
  static const char no_key[] = "\n\n  = value\n";
  assert_int_equal(config_file_parse(&cf, no_key, sizeof no_key - 1, "F", err, sizeof err), -1);
  assert_string_equal(err, "F:3: expected key=value (the key is empty)");
  config_file_free(&cf);
  static const char nul[] = "a=1\nb=\0x\n";
  assert_int_equal(config_file_parse(&cf, nul, sizeof nul - 1, "F", err, sizeof err), -1);
  assert_non_null(strstr(err, "F:2: a NUL byte"));
  config_file_free(&cf);
  unsigned mode;
  char missing[300];
  snprintf(missing, sizeof missing, "%s/missing.properties", dir);
  assert_int_equal(config_file_read(&cf, missing, &mode, err, sizeof err), -1);
  assert_non_null(strstr(err, "No such file"));
  assert_int_equal(config_file_read(&cf, dir, &mode, err, sizeof err), -1);
  assert_non_null(strstr(err, "not a regular file"));
}

static void test_secret_rule(void **state) {
  (void)state;
  const char *secret[] = {"sasl.password",
                          "sasl.pasword", /* a typo librdkafka does not know */
                          "ssl.key.password",
                          "ssl.keystore.location",
                          "ssl.key.pem",
                          "sasl.oauthbearer.config",
                          "sasl.oauthbearer.client.secret",
                          "schema.registry.basic.auth.user.info",
                          "schema.registry.bearer.auth.token",
                          "schema.registry.ssl.key.password",
                          "schema.registry.no.such.key",
                          "SASL.PASSWORD"};
  const char *plain[] = {"sasl.username",
                         "security.protocol",
                         "ssl.ca.location",
                         "bootstrap.servers",
                         "debug",
                         "acks",
                         "linger.ms",
                         "schema.registry.url",
                         "ssl.key.location",
                         "schema.registry.ssl.ca.location"};
  for (size_t i = 0; i < sizeof secret / sizeof *secret; i++)
    if (!kafka_conf_is_secret(secret[i], strlen(secret[i])))
      fail_msg("%s should be secret", secret[i]);
  for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
    if (kafka_conf_is_secret(plain[i], strlen(plain[i])))
      fail_msg("%s should not be secret", plain[i]);
  char out[200];
  kafka_conf_describe("sasl.password=hunter22", out, sizeof out);
  assert_string_equal(out, "sasl.password=[hidden]");
  kafka_conf_describe("acks=all", out, sizeof out);
  assert_string_equal(out, "acks=all");
}

/* Runs parse with stderr in a file; returns what it printed. */
static const char *parse_capturing(int (*parse)(void *, int, char **, char *, size_t), void *c,
                                   int argc, char **argv, int *rc, char *err, size_t errlen) {
  static char printed[2000];
  char path[300];
  snprintf(path, sizeof path, "%s/stderr", dir);
  fflush(stderr);
  int saved = dup(2);
  FILE *f = fopen(path, "w+");
  assert_non_null(f);
  dup2(fileno(f), 2);
  *rc = parse(c, argc, argv, err, errlen);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  rewind(f);
  size_t n = fread(printed, 1, sizeof printed - 1, f);
  printed[n] = 0;
  fclose(f);
  return printed;
}

static int parse_run(void *c, int argc, char **argv, char *err, size_t errlen) {
  return options_parse_run(c, argc, argv, err, errlen);
}
static int parse_produce(void *c, int argc, char **argv, char *err, size_t errlen) {
  return options_parse_produce(c, argc, argv, err, errlen);
}

static void test_run_config(void **state) {
  (void)state;
  const char *props = write_file("run.properties",
                                 "security.protocol=SASL_SSL\n"
                                 "sasl.username=regstream\n"
                                 "sasl.password=Hunter2Hunter2\n"
                                 "linger.ms=5\n"
                                 "schema.registry.url=https://registry:8081\n"
                                 "schema.registry.basic.auth.user.info=u:RegistrySecret\n"
                                 "schema.registry.bearer.auth.token=tok123\n"
                                 "schema.registry.ssl.ca.location=/ca.pem\n"
                                 "schema.registry.ssl.certificate.location=/c.pem\n"
                                 "schema.registry.ssl.key.location=/k.pem\n"
                                 "schema.registry.ssl.key.password=KeyPass\n",
                                 0600);
  char *argv[] = {"run",         "--brokers",
                  "b:1",         "--topic",
                  "t",           "-X",
                  "linger.ms=7", "--group",
                  "g",           "--output-topic",
                  "o",           "--config",
                  (char *)props, "-X",
                  "acks=1",      "--dead-letter-topic",
                  "d",           NULL};
  run_command c;
  char err[600];
  int rc;
  const char *printed = parse_capturing(parse_run, &c, 17, argv, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_string_equal(printed, ""); /* mode 0600: no warning */
  const kafka_run_options *k = &c.stream;
  /* the file's librdkafka items first, then the -X items in their order */
  assert_int_equal(k->conf_count, 6);
  assert_string_equal(k->conf[0], "security.protocol=SASL_SSL");
  assert_string_equal(k->conf[2], "sasl.password=Hunter2Hunter2");
  assert_string_equal(k->conf[3], "linger.ms=5");
  assert_string_equal(k->conf[4], "linger.ms=7");
  assert_string_equal(k->conf[5], "acks=1");
  assert_string_equal(k->schema_registry, "https://registry:8081");
  assert_string_equal(k->registry.basic_auth_user_info, "u:RegistrySecret");
  assert_string_equal(k->registry.bearer_token, "tok123");
  assert_string_equal(k->registry.ca_location, "/ca.pem");
  assert_string_equal(k->registry.certificate_location, "/c.pem");
  assert_string_equal(k->registry.key_location, "/k.pem");
  assert_string_equal(k->registry.key_password, "KeyPass");
  /* applied in that order, the last value wins */
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  assert_int_equal(kafka_conf_apply(conf, "b:1", k->conf, k->conf_count, err, sizeof err), 0);
  char v[64];
  size_t vs = sizeof v;
  assert_int_equal(rd_kafka_conf_get(conf, "linger.ms", v, &vs), RD_KAFKA_CONF_OK);
  assert_string_equal(v, "7");
  rd_kafka_conf_destroy(conf);
  options_free(&c.words);

  /* --schema-registry on the command line wins; so does --schema-dir */
  char *argv2[] = {"run",
                   "--brokers",
                   "b:1",
                   "--topic",
                   "t",
                   "--group",
                   "g",
                   "--output-topic",
                   "o",
                   "--dead-letter-topic",
                   "d",
                   "--config",
                   (char *)props,
                   "--schema-registry",
                   "http://cli:1",
                   NULL};
  assert_int_equal(options_parse_run(&c, 15, argv2, err, sizeof err), 0);
  assert_string_equal(c.stream.schema_registry, "http://cli:1");
  options_free(&c.words);
  argv2[13] = "--schema-dir";
  assert_int_equal(options_parse_run(&c, 15, argv2, err, sizeof err), 0);
  assert_null(c.stream.schema_registry);
  assert_string_equal(c.stream.schema_dir, "http://cli:1");
  options_free(&c.words);
}

static void test_config_errors_hide_secrets(void **state) {
  (void)state;
  produce_command c;
  char err[600];
  int rc;
  /* a mistyped secret in the file: the key named, the value hidden */
  const char *typo = write_file("typo.properties", "# x\nsasl.pasword=TopSecret123\n", 0600);
  char *argv[] = {"produce", "--brokers", "b:1",      "--topic",    "t",
                  "--input", "in.avro",   "--config", (char *)typo, NULL};
  parse_capturing(parse_produce, &c, 9, argv, &rc, err, sizeof err);
  assert_int_equal(rc, -1);
  assert_non_null(strstr(err, ":2: sasl.pasword=[hidden]"));
  assert_null(strstr(err, "TopSecret123"));
  options_free(&c.words);
  /* and as -X */
  char *argv_x[] = {"produce", "--brokers", "b:1",
                    "--topic", "t",         "--input",
                    "in.avro", "-X",        "sasl.pasword=TopSecret123",
                    NULL};
  assert_int_equal(options_parse_produce(&c, 9, argv_x, err, sizeof err), -1);
  assert_non_null(strstr(err, "-X sasl.pasword=[hidden]"));
  assert_null(strstr(err, "TopSecret123"));
  options_free(&c.words);
  /* a bad value of a known secret key is not quoted back either */
  char *argv_v[] = {"produce",
                    "--brokers",
                    "b:1",
                    "--topic",
                    "t",
                    "--input",
                    "in.avro",
                    "-X",
                    "ssl.key.password=",
                    "-X",
                    "ssl.keystore.location=/no/Secret-Keystore",
                    NULL};
  rc = options_parse_produce(&c, 11, argv_v, err, sizeof err);
  if (rc < 0)
    assert_null(strstr(err, "Secret-Keystore"));
  options_free(&c.words);
  /* an unknown schema.registry.* key: named, value hidden */
  const char *reg = write_file("reg.properties", "schema.registry.pasword=RegSecret\n", 0600);
  argv[8] = (char *)reg;
  assert_int_equal(options_parse_produce(&c, 9, argv, err, sizeof err), -1);
  assert_non_null(strstr(err, ":1: unknown key schema.registry.pasword"));
  assert_null(strstr(err, "RegSecret"));
  options_free(&c.words);
  /* --config twice */
  char *argv2[] = {"produce", "--brokers", "b:1",       "--topic",  "t",         "--input",
                   "in.avro", "--config",  (char *)reg, "--config", (char *)reg, NULL};
  assert_int_equal(options_parse_produce(&c, 11, argv2, err, sizeof err), -1);
  assert_string_equal(err, "give --config once");
  options_free(&c.words);
}

static void test_world_readable_warning(void **state) {
  (void)state;
  produce_command c;
  char err[600], want[900];
  int rc;
  const char *open_secret = write_file("open.properties", "sasl.password=OpenSecret9\n", 0644);
  char *argv[] = {"produce", "--brokers", "b:1",      "--topic",           "t",
                  "--input", "in.avro",   "--config", (char *)open_secret, NULL};
  const char *printed = parse_capturing(parse_produce, &c, 9, argv, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  snprintf(want, sizeof want,
           "regstream: warning: %s holds a secret and is readable by others (mode 0644): chmod "
           "600 %s\n",
           open_secret, open_secret);
  assert_string_equal(printed, want);
  options_free(&c.words);
  /* group-readable counts too; a file without secrets is no concern */
  chmod(open_secret, 0640);
  printed = parse_capturing(parse_produce, &c, 9, argv, &rc, err, sizeof err);
  assert_non_null(strstr(printed, "(mode 0640)"));
  options_free(&c.words);
  const char *open_plain = write_file("plain.properties", "linger.ms=3\n", 0644);
  argv[8] = (char *)open_plain;
  printed = parse_capturing(parse_produce, &c, 9, argv, &rc, err, sizeof err);
  assert_int_equal(rc, 0);
  assert_string_equal(printed, "");
  assert_int_equal(c.opt.conf_count, 1);
  options_free(&c.words);
}

static void test_redact(void **state) {
  (void)state;
  /* a secret set through kafka_conf_apply is scrubbed from later messages */
  const char *items[] = {"sasl.password=Zebra-Secret-77"};
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  char err[300];
  assert_int_equal(kafka_conf_apply(conf, NULL, items, 1, err, sizeof err), 0);
  rd_kafka_conf_destroy(conf);
  char out[200];
  kafka_redact("login as u with Zebra-Secret-77 failed; Zebra-Secret-77", out, sizeof out);
  assert_string_equal(out, "login as u with [hidden] failed; [hidden]");
  kafka_redact("nothing secret", out, 8);
  assert_string_equal(out, "nothing");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_rules),
      cmocka_unit_test(test_parse_errors),
      cmocka_unit_test(test_secret_rule),
      cmocka_unit_test(test_run_config),
      cmocka_unit_test(test_config_errors_hide_secrets),
      cmocka_unit_test(test_world_readable_warning),
      cmocka_unit_test(test_redact),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
