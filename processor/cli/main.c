/* main.c — the regstream command line: subcommands and their exit codes.
 *
 *   regstream run --input FILE.avro... --csv OUT.csv --dead-letter DLQ.jsonl [options]
 *   regstream report --csv ROLLUP.csv [--at YYYYMM] [--check [--tolerance POINTS]]
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
#include "state/snapshot.h"

static void usage(FILE *out) {
  fputs("usage:\n"
        "  regstream run --input FILE.avro [FILE.avro ...] --csv OUT.csv --dead-letter DLQ.jsonl\n"
        "                [--threads N] [--project-start YYYYMM] [--project-end YYYYMM]\n"
        "                [--full-time-weekly-hours X] [--durable-window-months N]\n"
        "                [--durable-run-months N] [--quiet] [--progress-ms MS]\n"
        "                [--snapshot-dir DIR [--snapshot-interval RECORDS|SECONDSs]]\n"
        "      file mode; --snapshot-dir makes a killed run resume where it was\n"
        "  regstream run --brokers HOST:PORT --topic T --group G --output-topic O\n"
        "                --dead-letter-topic D [--threads N] [--exit-at-eof] [--flush-ms MS]\n"
        "                [--schema FILE | --schema-registry URL | --schema-dir DIR]\n"
        "                [--registry-timeout SECONDS]\n"
        "                [--snapshot-dir DIR | --snapshot-topic T]\n"
        "                [--snapshot-interval RECORDS|SECONDSs]\n"
        "                [--partials-topic P] [--replication-factor R] [--quiet]\n"
        "                [--progress-ms MS] [rule options] [--config FILE] [-X key=value]...\n"
        "      Kafka mode; with --snapshot-dir (a folder) or --snapshot-topic (a compacted\n"
        "      topic, made when missing) a partition resumes from its snapshot\n"
        "  regstream demo --input FILE.avro... --csv OUT.csv [--threads N] [rule options]\n"
        "      the whole Kafka path (produce, run, export) on an in-process mock cluster\n"
        "  regstream report --csv ROLLUP.csv [--at YYYYMM] [--check [--tolerance POINTS]]\n"
        "      prints the evaluation report's headline measures (KIB, 2023) next to the\n"
        "      rollup's; --check exits 1 when one is off by more than the tolerance\n"
        "  regstream produce --brokers HOST:PORT --topic T --input FILE.avro [FILE.avro ...]\n"
        "                [--partitions N] [--replication-factor R]\n"
        "                [--framing plain|confluent --schema-id ID] [-X key=value]...\n"
        "                [--keep-going] [--quiet] [--config FILE]\n"
        "      loads container files onto a topic, keyed by person_id (made with N\n"
        "      partitions, default 6, if missing); exits 1 if a record could not be read\n"
        "      (unless --keep-going)\n"
        "  regstream export --brokers HOST:PORT --topic O --csv OUT.csv [-X key=value]...\n"
        "                [--timeout SECONDS] [--quiet] [--config FILE]\n"
        "      the latest rollup row per key of an output topic, as the rollup CSV\n"
        "  regstream snapshot inspect FILE\n"
        "      prints a snapshot's header, counts and sizes and verifies it; exits 1 when it\n"
        "      is damaged or unreadable\n",
        out);
}

static double peak_rss_mib(void) {
  struct rusage usage;
  return getrusage(RUSAGE_SELF, &usage) == 0 ? (double)usage.ru_maxrss / 1024.0 : 0.0;
}

static void print_rejected(const uint64_t rejected[REASON_COUNT]) {
  uint64_t total = 0;
  for (int r = 0; r < REASON_COUNT; r++)
    total += rejected[r];
  fprintf(stderr, "regstream: %llu rejected", (unsigned long long)total);
  for (int r = 1; r < REASON_COUNT; r++)
    if (rejected[r])
      fprintf(stderr, ", %s %llu", reason_code((reason)r), (unsigned long long)rejected[r]);
}

/* A bad command line: one line, exit status 2. */
static int usage_error(const char *command, const char *err) {
  fprintf(stderr, "regstream %s: %s\n", command, err);
  return 2;
}

static int command_run_kafka(const kafka_run_options *o) {
  char err[1024];
  kafka_run_result res;
  if (kafka_run(o, &res, err, sizeof err) < 0) {
    fprintf(stderr, "regstream run: %s\n", err);
    return 1;
  }
  if (!o->quiet) {
    fprintf(stderr,
            "regstream: %llu messages from %s in %.2f s (%.2f M/s), %.2f M/s from the first "
            "message, %d thread(s)\n",
            (unsigned long long)res.messages, o->topic, res.seconds,
            res.seconds > 0 ? (double)res.messages / res.seconds / 1e6 : 0.0,
            res.seconds_from_first > 0 ? (double)res.messages / res.seconds_from_first / 1e6 : 0.0,
            o->threads);
    if (o->exit_at_eof && res.seconds_input > 0)
      fprintf(stderr,
              "regstream: all input applied %.2f s after the first message (%.2f M/s); "
              "totals published and acknowledged %.2f s later\n",
              res.seconds_input, (double)res.messages / res.seconds_input / 1e6,
              res.seconds_from_first - res.seconds_input);
    print_rejected(res.rejected);
    fprintf(stderr, "; published %llu partial rows to %s and %llu total rows to %s\n",
            (unsigned long long)res.partials, o->partials_topic, (unsigned long long)res.totals,
            o->output_topic);
    if (o->snapshots.dir || o->snapshots.topic)
      fprintf(stderr,
              "regstream: snapshots: %llu shard(s) resumed (%.0f ms loading), %llu written "
              "(%.1f MiB), capture pause max %.1f ms, mean %.1f ms\n",
              (unsigned long long)res.snapshot_loads, res.snapshot_load_seconds * 1000,
              (unsigned long long)res.snapshots_written, (double)res.snapshot_bytes / 1048576.0,
              res.snapshot_pause_max * 1000,
              res.snapshot_captures
                  ? res.snapshot_pause_total * 1000 / (double)res.snapshot_captures
                  : 0.0);
  }
  return 0;
}

static int command_run_file(const replay_options *o) {
  char err[1024];
  replay_result res;
  int rc = replay_run(o, &res, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "regstream run: %s\n", err);
    return 1;
  }
  if (rc == 1) { /* stopped by a signal: 128 + its number, as a shell reports it */
    const char *name = res.stopped_by == SIGINT ? "SIGINT" : "SIGTERM";
    if (res.snapshot_written)
      fprintf(stderr,
              "regstream run: stopped by %s after %llu records; their snapshot is in %s: run "
              "the same command again to resume there\n",
              name, (unsigned long long)res.records, o->snapshots.dir);
    else
      fprintf(stderr,
              "regstream run: stopped by %s after %llu records%s; the same command starts "
              "again from the beginning\n",
              name, (unsigned long long)res.records,
              o->snapshots.dir ? " (their snapshot could not be written)" : " (no --snapshot-dir)");
    return 128 + res.stopped_by;
  }
  if (!o->quiet) {
    fprintf(stderr,
            "regstream: %llu records from %d file(s) in %.2f s (%.2f M records/s), %d thread(s)\n"
            "regstream: %llu persons, %.1f bytes of state per person, peak RSS %.0f MiB; %llu "
            "corrections\n",
            (unsigned long long)res.records, o->input_count, res.seconds,
            res.seconds > 0 ? (double)res.records / res.seconds / 1e6 : 0.0, o->threads,
            (unsigned long long)res.persons,
            res.persons ? (double)res.state_bytes / (double)res.persons : 0.0, peak_rss_mib(),
            (unsigned long long)res.corrected);
    print_rejected(res.rejected);
    fprintf(stderr, "; wrote %s (%zu rows) and %s\n", o->csv_path, res.rows, o->dead_letter_path);
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
  if (report_print(stdout, o.csv_path, o.at, err, sizeof err) < 0) {
    fprintf(stderr, "regstream report: %s\n", err);
    return 1;
  }
  if (o.check) {
    int off = report_check(o.csv_path, o.at, o.tolerance, err, sizeof err);
    if (off < 0) {
      fprintf(stderr, "regstream report: %s\n", err);
      return 1;
    }
    if (off > 0) {
      fprintf(stderr,
              "regstream report: %d measure(s) differ from the report by more than %.1f points\n",
              off, o.tolerance);
      return 1;
    }
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
    fprintf(stderr, "regstream produce: %s\n", err);
    return 1;
  }
  if (!o->quiet)
    fprintf(stderr,
            "regstream produce: %llu records (%.1f MB of values) to %s%s in %.2f s, %.0f "
            "records/s; %llu skipped\n",
            (unsigned long long)res.records, (double)res.bytes / 1e6, o->topic,
            res.created_topic ? " (created)" : "", res.seconds,
            res.seconds > 0 ? (double)res.records / res.seconds : 0.0,
            (unsigned long long)res.skipped);
  if (res.skipped && !o->keep_going) {
    fprintf(stderr,
            "regstream produce: %llu unreadable record(s) or region(s) skipped (--keep-going "
            "to accept)\n",
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
    fprintf(stderr, "regstream export: %s\n", err);
    return 1;
  }
  if (!o->quiet)
    fprintf(stderr,
            "regstream export: %llu messages (%llu tombstones) from %d partition(s) of %s, %zu "
            "keys; wrote %s (%zu rows) in %.2f s\n",
            (unsigned long long)res.messages, (unsigned long long)res.tombstones, res.partitions,
            o->topic, res.keys, o->csv_path, res.rows, res.seconds);
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
    fputs("usage: regstream snapshot inspect FILE\n", stderr);
    return 2;
  }
  char err[1024];
  if (snapshot_inspect(argv[2], stdout, err, sizeof err) < 0) {
    fflush(stdout);
    fprintf(stderr, "regstream snapshot: %s\n", err);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
      !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
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
  fprintf(stderr, "regstream: unknown command '%s' (try 'regstream help')\n", argv[1]);
  return 2;
}
