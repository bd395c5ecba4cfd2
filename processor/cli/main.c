/* main.c — the regstream command line: subcommands and their exit codes.
 *
 *   regstream run --input FILE.avro... --csv OUT.csv --dead-letter DLQ.jsonl [options]
 *   regstream report --csv ROLLUP.csv [--at YYYYMM] [--check [--tolerance POINTS]]
 *                    [--html OUT.html] [--min-cell N]
 *   regstream produce --brokers B --topic T --input FILE.avro... [options]   (produce.h)
 *   regstream export --brokers B --topic O --csv OUT.csv [options]           (export.h)
 *   regstream snapshot inspect FILE                                           (snapshot.h)
 *   regstream demo --input FILE.avro... --csv OUT.csv [options]             (demo.h)
 *
 * Options are parsed by cli/options.c into each subcommand's own struct;
 * this file runs the subcommand and prints its summary.
 * Exit status: 0 done; 1 the run failed (I/O, memory, Kafka); 2 bad command
 * line; 130 / 143 file mode stopped by SIGINT / SIGTERM before the end of
 * its input (with --snapshot-dir the same command resumes). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/options.h"
#include "metrics/metrics.h"
#include "state/snapshot.h"
#include "util/log.h"

static void usage(FILE *out) {
  fputs("usage:\n"
        "  regstream run --input FILE.avro [FILE.avro ...] --csv OUT.csv --dead-letter DLQ.jsonl\n"
        "                [--threads N] [--project-start YYYYMM] [--project-end YYYYMM]\n"
        "                [--full-time-weekly-hours X] [--durable-window-months N]\n"
        "                [--durable-run-months N] [--quiet] [--progress-ms MS]\n"
        "                [--snapshot-dir DIR [--snapshot-interval RECORDS|SECONDSs]]\n"
        "                [--metrics-listen [ADDR:]PORT [--metrics-linger SECONDS]]\n"
        "                [--postgres CONNINFO [--table T]] [--min-cell N]\n"
        "      file mode; --snapshot-dir makes a killed run resume where it was; --postgres\n"
        "      also replaces table T's contents with the rows (one transaction); --min-cell N\n"
        "      withholds rows with 1..N-1 members and suppresses counts 1..N-1 (SPEC section 12)\n"
        "  regstream run --brokers HOST:PORT --topic T --group G --output-topic O\n"
        "                --dead-letter-topic D [--threads N] [--exit-at-eof] [--flush-ms MS]\n"
        "                [--schema FILE | --schema-registry URL | --schema-dir DIR]\n"
        "                [--registry-timeout SECONDS]\n"
        "                [--snapshot-dir DIR | --snapshot-topic T]\n"
        "                [--snapshot-interval RECORDS|SECONDSs]\n"
        "                [--partials-topic P] [--replication-factor R] [--quiet]\n"
        "                [--progress-ms MS] [rule options] [--config FILE] [-X key=value]...\n"
        "                [--metrics-listen [ADDR:]PORT]\n"
        "      Kafka mode; with --snapshot-dir (a folder) or --snapshot-topic (a compacted\n"
        "      topic, made when missing) a partition resumes from its snapshot;\n"
        "      --metrics-listen serves /metrics, /healthz and /readyz (a bare port: 127.0.0.1)\n"
        "  regstream demo --input FILE.avro... --csv OUT.csv [--threads N] [rule options]\n"
        "      the whole Kafka path (produce, run, export) on an in-process mock cluster\n"
        "  regstream report --csv ROLLUP.csv [--at YYYYMM] [--check [--tolerance POINTS]]\n"
        "                [--html OUT.html] [--min-cell N]\n"
        "  regstream report --postgres CONNINFO [--table T] [--at YYYYMM] [...as above]\n"
        "      prints the evaluation report's headline measures (KIB, 2023) next to the\n"
        "      rollup's; --check exits 1 when one is off by more than the tolerance;\n"
        "      --html also writes the report's figures as one self-contained page;\n"
        "      --min-cell N: a shown count below N (and what would reveal it) is ..;\n"
        "      the figures are computed from the exact rows first\n"
        "  regstream produce --brokers HOST:PORT --topic T --input FILE.avro [FILE.avro ...]\n"
        "                [--partitions N] [--replication-factor R]\n"
        "                [--framing plain|confluent --schema-id ID] [-X key=value]...\n"
        "                [--keep-going] [--quiet] [--config FILE]\n"
        "      loads container files onto a topic, keyed by person_id (made with N\n"
        "      partitions, default 6, if missing); exits 1 if a record could not be read\n"
        "      (unless --keep-going)\n"
        "  regstream export --brokers HOST:PORT --topic O --csv OUT.csv [-X key=value]...\n"
        "                [--timeout SECONDS] [--quiet] [--config FILE] [--min-cell N]\n"
        "      the latest rollup row per key of an output topic, as the rollup CSV\n"
        "  regstream export --brokers HOST:PORT --topic O --postgres CONNINFO [--table T]\n"
        "                [--csv OUT.csv] [--follow] [--min-cell N] [options as above]\n"
        "      the same rows into a PostgreSQL table (default regstream_rollup); --follow\n"
        "      keeps it up to date, each batch one transaction with its topic offsets\n"
        "  regstream snapshot inspect FILE\n"
        "  regstream version\n"
        "      prints a snapshot's header, counts and sizes and verifies it; exits 1 when it\n"
        "      is damaged or unreadable\n"
        "  --log-format text|json (before or after COMMAND): the lines on stderr as text\n"
        "      (the default) or one JSON object per line (time, level, component, message,\n"
        "      fields)\n",
        out);
}

static double peak_rss_mib(void) {
  struct rusage usage;
  return getrusage(RUSAGE_SELF, &usage) == 0 ? (double)usage.ru_maxrss / 1024.0 : 0.0;
}

/* "N rejected, REASON n, ..." (the reasons that occurred) into buf; into
 * fields the total as "rejected" and every reason's count under
 * "rejected_by_reason". */
static void rejected_text(const uint64_t rejected[REASON_COUNT], char *buf, size_t len,
                          json_t *fields) {
  uint64_t total = 0;
  for (int r = 0; r < REASON_COUNT; r++)
    total += rejected[r];
  size_t o = (size_t)snprintf(buf, len, "%llu rejected", (unsigned long long)total);
  json_t *by = json_object();
  for (int r = 1; r < REASON_COUNT; r++) {
    if (rejected[r] && o < len)
      o += (size_t)snprintf(buf + o, len - o, ", %s %llu", reason_code((reason)r),
                            (unsigned long long)rejected[r]);
    json_object_set_new(by, reason_code((reason)r), json_integer((json_int_t)rejected[r]));
  }
  json_object_set_new(fields, "rejected", json_integer((json_int_t)total));
  json_object_set_new(fields, "rejected_by_reason", by);
}

/* A bad command line: one line, exit status 2. */
static int usage_error(const char *command, const char *err) {
  log_cmd(LOG_ERROR, command, "%s", err);
  return 2;
}

static int command_run_kafka(const kafka_run_options *o) {
  char err[1024];
  kafka_run_result res;
  if (kafka_run(o, &res, err, sizeof err) < 0) {
    log_cmd(LOG_ERROR, "run", "%s", err);
    return 1;
  }
  if (!o->quiet) {
    double rate = res.seconds > 0 ? (double)res.messages / res.seconds : 0.0;
    double rate_first =
        res.seconds_from_first > 0 ? (double)res.messages / res.seconds_from_first : 0.0;
    log_fields(LOG_INFO, "run",
               json_pack("{s:I,s:s,s:o,s:o,s:o,s:o,s:i}", "messages", (json_int_t)res.messages,
                         "topic", o->topic, "seconds", log_real(res.seconds), "messages_per_s",
                         log_real(rate), "seconds_from_first", log_real(res.seconds_from_first),
                         "messages_per_s_from_first", log_real(rate_first), "threads", o->threads),
               "%llu messages from %s in %.2f s (%.2f M/s), %.2f M/s from the first message, %d "
               "thread(s)",
               (unsigned long long)res.messages, o->topic, res.seconds, rate / 1e6,
               rate_first / 1e6, o->threads);
    if (o->exit_at_eof && res.seconds_input > 0)
      log_fields(LOG_INFO, "run",
                 json_pack("{s:o,s:o,s:o}", "seconds_input", log_real(res.seconds_input),
                           "messages_per_s", log_real((double)res.messages / res.seconds_input),
                           "seconds_settling",
                           log_real(res.seconds_from_first - res.seconds_input)),
                 "all input applied %.2f s after the first message (%.2f M/s); totals published "
                 "and acknowledged %.2f s later",
                 res.seconds_input, (double)res.messages / res.seconds_input / 1e6,
                 res.seconds_from_first - res.seconds_input);
    char rejected[512];
    json_t *fields = json_object();
    rejected_text(res.rejected, rejected, sizeof rejected, fields);
    json_object_set_new(fields, "partials", json_integer((json_int_t)res.partials));
    json_object_set_new(fields, "partials_topic", json_string(o->partials_topic));
    json_object_set_new(fields, "totals", json_integer((json_int_t)res.totals));
    json_object_set_new(fields, "output_topic", json_string(o->output_topic));
    log_fields(LOG_INFO, "run", fields,
               "%s; published %llu partial rows to %s and %llu total rows to %s", rejected,
               (unsigned long long)res.partials, o->partials_topic, (unsigned long long)res.totals,
               o->output_topic);
    if (o->snapshots.dir || o->snapshots.topic) {
      double mean =
          res.snapshot_captures ? res.snapshot_pause_total / (double)res.snapshot_captures : 0.0;
      log_fields(LOG_INFO, "snapshot",
                 json_pack("{s:I,s:o,s:I,s:I,s:o,s:o}", "resumed", (json_int_t)res.snapshot_loads,
                           "load_seconds", log_real(res.snapshot_load_seconds), "written",
                           (json_int_t)res.snapshots_written, "bytes",
                           (json_int_t)res.snapshot_bytes, "pause_max_seconds",
                           log_real(res.snapshot_pause_max), "pause_mean_seconds", log_real(mean)),
                 "snapshots: %llu shard(s) resumed (%.0f ms loading), %llu written (%.1f MiB), "
                 "capture pause max %.1f ms, mean %.1f ms",
                 (unsigned long long)res.snapshot_loads, res.snapshot_load_seconds * 1000,
                 (unsigned long long)res.snapshots_written, (double)res.snapshot_bytes / 1048576.0,
                 res.snapshot_pause_max * 1000, mean * 1000);
    }
  }
  return 0;
}

static int command_run_file(const replay_options *o) {
  char err[1024];
  replay_result res;
  int rc = replay_run(o, &res, err, sizeof err);
  if (rc < 0) {
    log_cmd(LOG_ERROR, "run", "%s", err);
    return 1;
  }
  if (rc == 1) { /* stopped by a signal: 128 + its number, as a shell reports it */
    const char *name = res.stopped_by == SIGINT ? "SIGINT" : "SIGTERM";
    json_t *fields = json_pack("{s:s,s:I,s:b}", "signal", name, "records", (json_int_t)res.records,
                               "snapshot_written", res.snapshot_written);
    if (res.snapshot_written)
      log_cmd_fields(LOG_WARN, "run", fields,
                     "stopped by %s after %llu records; their snapshot is in %s: run the same "
                     "command again to resume there",
                     name, (unsigned long long)res.records, o->snapshots.dir);
    else
      log_cmd_fields(LOG_WARN, "run", fields,
                     "stopped by %s after %llu records%s; the same command starts again from the "
                     "beginning",
                     name, (unsigned long long)res.records,
                     o->snapshots.dir ? " (their snapshot could not be written)"
                                      : " (no --snapshot-dir)");
    return 128 + res.stopped_by;
  }
  if (!o->quiet) {
    double rate = res.seconds > 0 ? (double)res.records / res.seconds : 0.0;
    log_fields(LOG_INFO, "run",
               json_pack("{s:I,s:i,s:o,s:o,s:i}", "records", (json_int_t)res.records, "files",
                         o->input_count, "seconds", log_real(res.seconds), "records_per_s",
                         log_real(rate), "threads", o->threads),
               "%llu records from %d file(s) in %.2f s (%.2f M records/s), %d thread(s)",
               (unsigned long long)res.records, o->input_count, res.seconds, rate / 1e6,
               o->threads);
    double per_person = res.persons ? (double)res.state_bytes / (double)res.persons : 0.0;
    double rss = peak_rss_mib();
    log_fields(LOG_INFO, "run",
               json_pack("{s:I,s:o,s:o,s:I}", "persons", (json_int_t)res.persons,
                         "state_bytes_per_person", log_real(per_person), "peak_rss_mib",
                         log_real(rss), "corrections", (json_int_t)res.corrected),
               "%llu persons, %.1f bytes of state per person, peak RSS %.0f MiB; %llu corrections",
               (unsigned long long)res.persons, per_person, rss, (unsigned long long)res.corrected);
    char rejected[512];
    json_t *fields = json_object();
    rejected_text(res.rejected, rejected, sizeof rejected, fields);
    json_object_set_new(fields, "rows", json_integer((json_int_t)res.rows));
    json_object_set_new(fields, "csv", json_string(o->csv_path));
    json_object_set_new(fields, "dead_letter", json_string(o->dead_letter_path));
    log_fields(LOG_INFO, "run", fields, "%s; wrote %s (%zu rows) and %s", rejected, o->csv_path,
               res.rows, o->dead_letter_path);
    if (o->postgres)
      log_fields(LOG_INFO, "run",
                 json_pack("{s:s,s:I}", "table", o->postgres_table, "table_rows",
                           (json_int_t)res.postgres_rows),
                 "replaced the contents of PostgreSQL table %s (%zu rows)", o->postgres_table,
                 res.postgres_rows);
  }
  return 0;
}

static int command_run(int argc, char **argv) {
  run_command c;
  char err[1024];
  int rc = options_parse_run(&c, argc, argv, err, sizeof err) < 0 ? usage_error("run", err)
           : c.kafka                                              ? command_run_kafka(&c.stream)
                                                                  : command_run_file(&c.file);
  options_free(&c.words);
  return rc;
}

static int command_report(int argc, char **argv) {
  report_options o;
  char err[512];
  if (options_parse_report(&o, argc, argv, err, sizeof err) < 0)
    return usage_error("report", err);
  report_data *d = report_load(&o, err, sizeof err);
  if (!d || report_print(stdout, d, err, sizeof err) < 0 ||
      (o.html_path && report_write_html(d, o.html_path, err, sizeof err) < 0)) {
    log_cmd(LOG_ERROR, "report", "%s", err);
    report_free(d);
    return 1;
  }
  int off = o.check ? report_check(d, o.tolerance, err, sizeof err) : 0;
  report_free(d);
  if (off > 0) {
    log_cmd_fields(
        LOG_ERROR, "report",
        json_pack("{s:i,s:o}", "measures_off", off, "tolerance_points", log_real(o.tolerance)),
        "%d measure(s) differ from the report by more than %.1f points", off, o.tolerance);
    return 1;
  }
  return 0;
}

static int command_demo(int argc, char **argv) {
  demo_command c;
  char err[1024];
  int rc = options_parse_demo(&c, argc, argv, err, sizeof err) < 0 ? usage_error("demo", err)
                                                                   : demo_run(&c.opt);
  options_free(&c.words);
  return rc;
}

static int run_produce(const produce_options *o) {
  char err[1024];
  produce_result res;
  if (produce_run(o, &res, err, sizeof err) < 0) {
    log_cmd(LOG_ERROR, "produce", "%s", err);
    return 1;
  }
  if (!o->quiet) {
    double rate = res.seconds > 0 ? (double)res.records / res.seconds : 0.0;
    log_cmd_fields(LOG_INFO, "produce",
                   json_pack("{s:I,s:I,s:s,s:b,s:o,s:o,s:I}", "records", (json_int_t)res.records,
                             "bytes", (json_int_t)res.bytes, "topic", o->topic, "created_topic",
                             res.created_topic, "seconds", log_real(res.seconds), "records_per_s",
                             log_real(rate), "skipped", (json_int_t)res.skipped),
                   "%llu records (%.1f MB of values) to %s%s in %.2f s, %.0f records/s; %llu "
                   "skipped",
                   (unsigned long long)res.records, (double)res.bytes / 1e6, o->topic,
                   res.created_topic ? " (created)" : "", res.seconds, rate,
                   (unsigned long long)res.skipped);
  }
  if (res.skipped && !o->keep_going) {
    log_cmd_fields(LOG_ERROR, "produce", json_pack("{s:I}", "skipped", (json_int_t)res.skipped),
                   "%llu unreadable record(s) or region(s) skipped (--keep-going to accept)",
                   (unsigned long long)res.skipped);
    return 1;
  }
  return 0;
}

static int command_produce(int argc, char **argv) {
  produce_command c;
  char err[1024];
  int rc = options_parse_produce(&c, argc, argv, err, sizeof err) < 0 ? usage_error("produce", err)
                                                                      : run_produce(&c.opt);
  options_free(&c.words);
  return rc;
}

static int run_export(const export_options *o) {
  char err[1024];
  export_result res;
  if (export_run(o, &res, err, sizeof err) < 0) {
    log_cmd(LOG_ERROR, "export", "%s", err);
    return 1;
  }
  if (!o->quiet && o->follow)
    log_cmd_fields(LOG_INFO, "export",
                   json_pack("{s:I,s:I,s:I,s:s,s:s}", "messages", (json_int_t)res.messages,
                             "batches", (json_int_t)res.batches, "changes", (json_int_t)res.changes,
                             "topic", o->topic, "table", o->postgres_table),
                   "stopped%s: %llu messages of %s applied to %s in %llu transaction(s) (%llu "
                   "key changes)",
                   res.stopped_by == SIGINT ? " by SIGINT"
                   : res.stopped_by         ? " by SIGTERM"
                                            : "",
                   (unsigned long long)res.messages, o->topic, o->postgres_table,
                   (unsigned long long)res.batches, (unsigned long long)res.changes);
  else if (!o->quiet) {
    char wrote[1200];
    int k = 0;
    if (o->csv_path)
      k = snprintf(wrote, sizeof wrote, "wrote %s (%zu rows)", o->csv_path, res.rows);
    if (o->postgres)
      snprintf(wrote + k, sizeof wrote - (size_t)k, "%sreplaced table %s (%zu rows)",
               k ? " and " : "", o->postgres_table, res.postgres_rows);
    log_cmd_fields(LOG_INFO, "export",
                   json_pack("{s:I,s:I,s:i,s:s,s:I,s:s?,s:I,s:s?,s:I,s:o}", "messages",
                             (json_int_t)res.messages, "tombstones", (json_int_t)res.tombstones,
                             "partitions", res.partitions, "topic", o->topic, "keys",
                             (json_int_t)res.keys, "csv", o->csv_path, "rows", (json_int_t)res.rows,
                             "table", o->postgres_table, "table_rows",
                             (json_int_t)res.postgres_rows, "seconds", log_real(res.seconds)),
                   "%llu messages (%llu tombstones) from %d partition(s) of %s, %zu keys; %s in "
                   "%.2f s",
                   (unsigned long long)res.messages, (unsigned long long)res.tombstones,
                   res.partitions, o->topic, res.keys, wrote, res.seconds);
  }
  return 0;
}

static int command_export(int argc, char **argv) {
  export_command c;
  char err[1024];
  int rc = options_parse_export(&c, argc, argv, err, sizeof err) < 0 ? usage_error("export", err)
                                                                     : run_export(&c.opt);
  options_free(&c.words);
  return rc;
}

/* `regstream snapshot inspect FILE`: 0 valid, 1 invalid, 2 bad command line. */
static int command_snapshot(int argc, char **argv) {
  if (argc != 3 || strcmp(argv[1], "inspect") != 0) {
    fputs("usage: regstream snapshot inspect FILE\n", stderr); /* usage: plain, not a log line */
    return 2;
  }
  char err[1024];
  if (snapshot_inspect(argv[2], stdout, err, sizeof err) < 0) {
    fflush(stdout);
    log_cmd(LOG_ERROR, "snapshot", "%s", err);
    return 1;
  }
  return 0;
}

/* `regstream --log-format F COMMAND ...` (or --log-format=F): the format
 * set, the words taken off argv. 0, or 2 (a bad value, said). */
static int global_options(int *argc, char ***argv) {
  while (*argc >= 2 && !strncmp((*argv)[1], "--log-format", 12) &&
         ((*argv)[1][12] == 0 || (*argv)[1][12] == '=')) {
    const char *value = (*argv)[1][12] == '=' ? (*argv)[1] + 13 : *argc >= 3 ? (*argv)[2] : NULL;
    char err[300];
    if (options_log_format(value, err, sizeof err) < 0) {
      log_msg(LOG_ERROR, "cli", "%s", err);
      return 2;
    }
    int taken = (*argv)[1][12] == '=' ? 1 : 2;
    (*argv)[taken] = (*argv)[0]; /* the program's name stays first */
    *argv += taken;
    *argc -= taken;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (global_options(&argc, &argv))
    return 2;
  if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
      !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    printf("regstream %s\n", metrics_version);
    return 0;
  }
  if (!strcmp(argv[1], "run"))
    return command_run(argc - 1, argv + 1);
  if (!strcmp(argv[1], "demo"))
    return command_demo(argc - 1, argv + 1);
  if (!strcmp(argv[1], "report"))
    return command_report(argc - 1, argv + 1);
  if (!strcmp(argv[1], "produce"))
    return command_produce(argc - 1, argv + 1);
  if (!strcmp(argv[1], "export"))
    return command_export(argc - 1, argv + 1);
  if (!strcmp(argv[1], "snapshot"))
    return command_snapshot(argc - 1, argv + 1);
  log_msg(LOG_ERROR, "cli", "unknown command '%s' (try 'regstream help')", argv[1]);
  return 2;
}
