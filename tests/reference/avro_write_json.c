/* avro_write_json.c — regstream-test-writer: JSON lines in, an Avro container file out.
 *
 * A test helper for tests/edge_cases.py (and hand checks of regstream-refmodel): every input
 * line is one JSON object holding one record of the writer schema (default
 * schemas/person_month.avsc), written with Avro C's generic writer. It knows nothing of the
 * domain: each field of the schema is taken from the key of the same name — integers for
 * int/long, numbers or "NaN"/"Infinity"/"-Infinity" for float/double, true/false for boolean,
 * a symbol (or a raw integer index, to write a bad one) for an enum. A missing key is an error.
 *
 *   regstream-test-writer --out FILE.avro [--schema WRITER.avsc] [--codec null|deflate|snappy|lzma]
 *                         [--block-size BYTES] < records.jsonl
 *
 * Exit status: 0 written; 1 bad input or I/O failure; 2 bad command line. */
#include <avro.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TEST_WRITER_SCHEMA_PATH
#define TEST_WRITER_SCHEMA_PATH "schemas/person_month.avsc"
#endif

static void fail(int code, const char *what, const char *detail) {
  fprintf(stderr, "regstream-test-writer: %s%s%s\n", what, detail ? ": " : "",
          detail ? detail : "");
  exit(code);
}

static double json_to_double(json_t *j, const char *field) {
  if (json_is_number(j))
    return json_number_value(j);
  if (json_is_string(j)) {
    const char *s = json_string_value(j);
    if (strcmp(s, "NaN") == 0)
      return NAN;
    if (strcmp(s, "Infinity") == 0)
      return INFINITY;
    if (strcmp(s, "-Infinity") == 0)
      return -INFINITY;
  }
  fail(1, "not a number for field", field);
  return 0;
}

static void set_field(avro_value_t *field, avro_schema_t schema, json_t *j, const char *name) {
  int rc = 0;
  switch (avro_typeof(schema)) {
  case AVRO_INT64:
  case AVRO_INT32:
    if (!json_is_integer(j))
      fail(1, "not an integer for field", name);
    rc = avro_typeof(schema) == AVRO_INT64
             ? avro_value_set_long(field, (int64_t)json_integer_value(j))
             : avro_value_set_int(field, (int32_t)json_integer_value(j));
    break;
  case AVRO_FLOAT:
    rc = avro_value_set_float(field, (float)json_to_double(j, name));
    break;
  case AVRO_DOUBLE:
    rc = avro_value_set_double(field, json_to_double(j, name));
    break;
  case AVRO_BOOLEAN:
    if (!json_is_boolean(j))
      fail(1, "not a boolean for field", name);
    rc = avro_value_set_boolean(field, json_is_true(j));
    break;
  case AVRO_ENUM:
    if (json_is_integer(j)) {
      rc = avro_value_set_enum(field, (int)json_integer_value(j));
    } else if (json_is_string(j)) {
      int index = avro_schema_enum_get_by_name(schema, json_string_value(j));
      if (index < 0)
        fail(1, "unknown enum symbol", json_string_value(j));
      rc = avro_value_set_enum(field, index);
    } else {
      fail(1, "not an enum symbol for field", name);
    }
    break;
  default:
    fail(1, "unsupported field type in writer schema", name);
  }
  if (rc)
    fail(1, "Avro C", avro_strerror());
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    fail(1, "cannot open", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *text = malloc((size_t)n + 1);
  if (!text || fread(text, 1, (size_t)n, f) != (size_t)n)
    fail(1, "cannot read", path);
  text[n] = 0;
  fclose(f);
  return text;
}

int main(int argc, char **argv) {
  const char *out = NULL, *schema_path = TEST_WRITER_SCHEMA_PATH, *codec = "null";
  long block_size = 0;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc)
      fail(2, "missing value for", argv[i]);
    if (strcmp(argv[i], "--out") == 0)
      out = argv[++i];
    else if (strcmp(argv[i], "--schema") == 0)
      schema_path = argv[++i];
    else if (strcmp(argv[i], "--codec") == 0)
      codec = argv[++i];
    else if (strcmp(argv[i], "--block-size") == 0)
      block_size = strtol(argv[++i], NULL, 10);
    else
      fail(2, "unknown option", argv[i]);
  }
  if (!out)
    fail(2, "usage", "--out FILE.avro [--schema S.avsc] [--codec C] [--block-size N] < in.jsonl");

  char *text = read_all(schema_path);
  avro_schema_t schema;
  if (avro_schema_from_json_length(text, strlen(text), &schema))
    fail(1, "bad schema", avro_strerror());
  free(text);

  remove(out);
  avro_file_writer_t writer;
  if (avro_file_writer_create_with_codec(out, schema, &writer, codec, (size_t)block_size))
    fail(1, "cannot create", avro_strerror());
  avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
  avro_value_t value;
  if (!iface || avro_generic_value_new(iface, &value))
    fail(1, "Avro C", avro_strerror());

  char line[8192];
  long line_no = 0;
  size_t fields = avro_schema_record_size(schema);
  while (fgets(line, sizeof line, stdin)) {
    line_no++;
    if (strspn(line, " \t\r\n") == strlen(line))
      continue;
    json_error_t err;
    json_t *obj = json_loads(line, 0, &err);
    if (!obj || !json_is_object(obj)) {
      fprintf(stderr, "regstream-test-writer: line %ld: %s\n", line_no, err.text);
      return 1;
    }
    for (size_t fi = 0; fi < fields; fi++) {
      const char *name = avro_schema_record_field_name(schema, (int)fi);
      json_t *j = json_object_get(obj, name);
      if (!j)
        fail(1, "missing field", name);
      avro_value_t field;
      if (avro_value_get_by_index(&value, fi, &field, NULL))
        fail(1, "Avro C", avro_strerror());
      set_field(&field, avro_schema_record_field_get_by_index(schema, (int)fi), j, name);
    }
    json_decref(obj);
    if (avro_file_writer_append_value(writer, &value))
      fail(1, "cannot append", avro_strerror());
  }
  if (avro_file_writer_close(writer))
    fail(1, "cannot close", out);
  avro_value_decref(&value);
  avro_value_iface_decref(iface);
  avro_schema_decref(schema);
  return 0;
}
