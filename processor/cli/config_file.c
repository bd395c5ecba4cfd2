/* config_file.c — the --config properties reader (config_file.h): the text
 * into "key=value" items. Nothing here knows a key; validation and secrets
 * stay with cli/options.c and kafka/client.c. */
#include "cli/config_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { CONFIG_MAX_BYTES = 1 << 20 };

static int is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

void config_file_free(config_file *cf) {
  free(cf->text);
  free(cf->entries);
  cf->text = NULL;
  cf->entries = NULL;
  cf->count = 0;
}

/* Copies [s, e) to out with "\:" and "\=" unescaped; returns the end. */
static char *unescape(char *out, const char *s, const char *e) {
  while (s < e) {
    if (*s == '\\' && s + 1 < e && (s[1] == ':' || s[1] == '='))
      s++;
    *out++ = *s++;
  }
  return out;
}

int config_file_parse(config_file *cf, const char *text, size_t len, const char *name, char *err,
                      size_t errlen) {
  memset(cf, 0, sizeof *cf);
  /* Every item is at most its line plus a NUL: len + 1 bytes hold them all. */
  cf->text = malloc(len + 1);
  int cap = 16;
  cf->entries = malloc((size_t)cap * sizeof *cf->entries);
  if (!cf->text || !cf->entries) {
    config_file_free(cf);
    snprintf(err, errlen, "%s: out of memory", name);
    return -1;
  }
  char *out = cf->text;
  const char *p = text, *end = text + len;
  for (int line = 1; p < end; line++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *s = p, *e = nl ? nl : end;
    p = nl ? nl + 1 : end;
    if (memchr(s, '\0', (size_t)(e - s))) {
      snprintf(err, errlen, "%s:%d: a NUL byte (is this a properties file?)", name, line);
      config_file_free(cf);
      return -1;
    }
    while (s < e && is_space(*s))
      s++;
    while (e > s && is_space(e[-1]))
      e--;
    if (s == e || *s == '#')
      continue;
    /* unescape the line, then split at its first '=' (as kcat does) */
    char *item = out;
    char *stop = unescape(item, s, e);
    char *eq = memchr(item, '=', (size_t)(stop - item));
    if (!eq || eq == item) {
      snprintf(err, errlen, "%s:%d: expected key=value%s", name, line,
               eq ? " (the key is empty)" : "");
      config_file_free(cf);
      return -1;
    }
    char *ke = eq;
    while (ke > item && is_space(ke[-1]))
      ke--;
    if (ke == item) {
      snprintf(err, errlen, "%s:%d: expected key=value (the key is empty)", name, line);
      config_file_free(cf);
      return -1;
    }
    char *vs = eq + 1;
    while (vs < stop && is_space(*vs))
      vs++;
    /* compact to "key=value" in place (only ever moves bytes left) */
    size_t key_len = (size_t)(ke - item), vlen = (size_t)(stop - vs);
    item[key_len] = '=';
    memmove(item + key_len + 1, vs, vlen);
    item[key_len + 1 + vlen] = '\0';
    out = item + key_len + vlen + 2;
    if (cf->count == cap) {
      cap *= 2;
      config_entry *grown = realloc(cf->entries, (size_t)cap * sizeof *grown);
      if (!grown) {
        snprintf(err, errlen, "%s: out of memory", name);
        config_file_free(cf);
        return -1;
      }
      cf->entries = grown;
    }
    cf->entries[cf->count++] =
        (config_entry){.item = item, .value = item + key_len + 1, .key_len = key_len, .line = line};
  }
  return 0;
}

int config_file_read(config_file *cf, const char *path, unsigned *mode, char *err, size_t errlen) {
  memset(cf, 0, sizeof *cf);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot read --config %s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "--config %s is not a regular file", path);
    fclose(f);
    return -1;
  }
  *mode = (unsigned)(st.st_mode & 07777);
  if (st.st_size > CONFIG_MAX_BYTES) {
    snprintf(err, errlen, "--config %s is larger than %d bytes: is it a properties file?", path,
             CONFIG_MAX_BYTES);
    fclose(f);
    return -1;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t n = buf ? fread(buf, 1, (size_t)st.st_size + 1, f) : 0;
  int bad = !buf || ferror(f) || n > (size_t)st.st_size;
  fclose(f);
  if (bad) {
    snprintf(err, errlen, "cannot read --config %s: %s", path,
             buf ? "read error or file changed while read" : "out of memory");
    free(buf);
    return -1;
  }
  int rc = config_file_parse(cf, buf, n, path, err, errlen);
  /* the raw text may hold secrets: wipe it before it is freed */
  memset(buf, 0, n);
  free(buf);
  return rc;
}
