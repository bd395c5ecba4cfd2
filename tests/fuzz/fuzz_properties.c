/* fuzz_properties.c — libFuzzer harness for the --config properties reader
 * (processor/cli/config_file.c) and the secret rule applied to what it reads
 * (kafka/client.c). Input: the file's bytes. Checks: -1 comes with a
 * one-line reason and no entries; 0 comes with entries whose items are
 * "key=value" with a non-empty key, no white space at either end of key and
 * value, no NUL or newline inside, in increasing line order; reading the
 * same bytes from a file gives the same items; an item without a backslash
 * reads back as itself; a secret key's item is described as "key=[hidden]"
 * and its value (a long one with a digit, not inside the key) is in no
 * error of the -X check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/config_file.h"
#include "fuzz_common.h"
#include "kafka/client.h"

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void check_entries(const config_file *cf, size_t size) {
  int last_line = 0;
  FUZZ_CHECK((size_t)cf->count <= size, "more entries than bytes");
  for (int i = 0; i < cf->count; i++) {
    const config_entry *e = &cf->entries[i];
    size_t len = strlen(e->item);
    FUZZ_CHECK(e->key_len > 0 && e->key_len < len && e->item[e->key_len] == '=', "key=value");
    FUZZ_CHECK(e->value == e->item + e->key_len + 1, "value inside the item");
    FUZZ_CHECK(!memchr(e->item, '=', e->key_len), "'=' inside the key");
    FUZZ_CHECK(!strchr(e->item, '\n'), "a newline inside an item");
    FUZZ_CHECK(!is_space(e->item[0]) && !is_space(e->item[e->key_len - 1]), "key not trimmed");
    size_t vlen = strlen(e->value);
    FUZZ_CHECK(!vlen || (!is_space(e->value[0]) && !is_space(e->value[vlen - 1])),
               "value not trimmed");
    FUZZ_CHECK(e->item[0] != '#', "a comment read as an item");
    FUZZ_CHECK(e->line > last_line, "lines out of order");
    last_line = e->line;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text = malloc(size ? size : 1); /* exactly sized: reads past it are seen */
  FUZZ_CHECK(text, "out of memory");
  memcpy(text, data, size);
  config_file cf;
  char err[400];
  int rc = config_file_parse(&cf, text, size, "fuzz.properties", err, sizeof err);
  FUZZ_CHECK(rc == 0 || rc == -1, "neither 0 nor -1");
  if (rc < 0) {
    fuzz_check_err(err, sizeof err);
    FUZZ_CHECK(cf.count == 0 && !cf.entries, "entries after an error");
  } else {
    check_entries(&cf, size);
  }

  /* the same bytes as a file */
  config_file again;
  unsigned mode;
  char err2[400];
  int rc2 = config_file_read(&again, fuzz_file_with(data, size), &mode, err2, sizeof err2);
  FUZZ_CHECK(rc2 == rc, "read and parse disagree");
  if (rc == 0) {
    FUZZ_CHECK(again.count == cf.count, "read and parse: entry counts");
    for (int i = 0; i < cf.count; i++)
      FUZZ_CHECK(!strcmp(again.entries[i].item, cf.entries[i].item) &&
                     again.entries[i].line == cf.entries[i].line,
                 "read and parse: items");
  }
  config_file_free(&again);

  for (int i = 0; rc == 0 && i < cf.count; i++) {
    const config_entry *e = &cf.entries[i];
    /* an item reads back as itself */
    if (!strchr(e->item, '\\')) {
      config_file one;
      char e3[400];
      FUZZ_CHECK(config_file_parse(&one, e->item, strlen(e->item), "x", e3, sizeof e3) == 0 &&
                     one.count == 1 && !strcmp(one.entries[0].item, e->item),
                 "an item does not read back as itself");
      config_file_free(&one);
    }
    if (i >= 16)
      continue; /* the -X check makes a librdkafka configuration: bounded */
    char shown[600], key[300];
    kafka_conf_describe(e->item, shown, sizeof shown);
    int secret = kafka_conf_is_secret(e->item, e->key_len);
    if (secret && e->key_len < 256) {
      snprintf(key, sizeof key, "%.*s=[hidden]", (int)e->key_len, e->item);
      FUZZ_CHECK(!strcmp(shown, key), "a secret item described with its value");
    }
    char xerr[800];
    if (kafka_conf_check_item(e->item, "-X", xerr, sizeof xerr) < 0) {
      fuzz_check_err_text(xerr, sizeof xerr);
      size_t vlen = strlen(e->value);
      /* The error names the item as "KEY=[hidden]": a value that is part of
       * that text (a key ending with it and the '=') is not leaked by it. */
      snprintf(key, sizeof key, "%.*s=[hidden]", (int)(e->key_len < 280 ? e->key_len : 280),
               e->item);
      if (secret && vlen >= 16 && strpbrk(e->value, "0123456789") && !strstr(key, e->value))
        FUZZ_CHECK(!strstr(xerr, e->value), "a secret value in an error");
    }
  }
  config_file_free(&cf);
  free(text);
  return 0;
}
