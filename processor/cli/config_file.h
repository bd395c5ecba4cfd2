/* config_file.h — the properties file of --config: the format of
 * librdkafka's and kcat's -F files, read into "key=value" items. What the
 * keys mean (librdkafka's, schema.registry.*) and which values are secret
 * stay with cli/options.c and kafka/client.c.
 *
 * Format (kcat's reader, read_conf_file): one property a line; each line is
 * trimmed of white space at both ends; empty lines and lines whose first
 * character is '#' are skipped; "\:" and "\=" become ':' and '='; the line
 * is split at its first '=' into key and value, and the key must not be
 * empty. Beyond kcat: white space before and after the '=' is trimmed too
 * (kcat would keep it and librdkafka then rejects "key " as unknown), lines
 * may be of any length, and a NUL byte is an error. A line without '=' is an
 * error naming the file and line, never quoting it (it may be a secret). */
#ifndef REGSTREAM_CLI_CONFIG_FILE_H
#define REGSTREAM_CLI_CONFIG_FILE_H

#include <stddef.h>

typedef struct config_entry {
  const char *item;  /* "key=value", NUL-terminated */
  const char *value; /* inside item, after the '=' */
  size_t key_len;    /* item[0 .. key_len) is the key */
  int line;          /* 1-based line of the file */
} config_entry;

typedef struct config_file {
  char *text; /* the items, one after another; owned */
  config_entry *entries;
  int count;
} config_file;

/* Parses len bytes of text (need not be NUL-terminated) into cf; name is
 * used in errors ("NAME:LINE: ..."). 0, or -1 with a one-line reason (cf is
 * then empty). Free with config_file_free either way. */
int config_file_parse(config_file *cf, const char *text, size_t len, const char *name, char *err,
                      size_t errlen);
/* Reads and parses the file at path. *mode gets its permission bits (for the
 * "readable by others" warning). 0, or -1 with a one-line reason. */
int config_file_read(config_file *cf, const char *path, unsigned *mode, char *err, size_t errlen);
void config_file_free(config_file *cf);

#endif
