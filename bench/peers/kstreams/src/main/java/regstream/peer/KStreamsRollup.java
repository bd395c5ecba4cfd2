/*
 * KStreamsRollup — the Kafka Streams peer of SPEC §7: the SPEC §3/§4 rollups
 * computed the way a Java team would with Kafka Streams 4.3.1, so that
 * bench/kstreams.sh measures it next to regstream's Kafka mode on the same
 * topic. Owned by the Kafka Streams benchmark (bench/kstreams.sh); this one
 * file is the whole peer.
 *
 * Topology (at-least-once, the default processing guarantee):
 *   input topic (key: person_id as decimal ASCII, as `regstream produce`
 *   writes it; value: plain Avro binary of schemas/person_month.avsc, no
 *   Confluent framing)
 *   -> process(PersonProcessor) with a RocksDB KeyValueStore "persons"
 *      (person_id -> 15-byte state, changelogged, no record cache: see below): decodes the record,
 *      applies SPEC §3 exactly as processor/core/rules.c does (gaps, entry,
 *      accumulated goal, durable windows; a record for the latest month
 *      retracts that month's contribution and adds the new one; a late record
 *      changes nothing) and forwards one contribution per member month
 *   -> groupBy (period, municipality, visitation) — a repartition topic —
 *   -> aggregate into a KTable "rollups" (RocksDB) of the 25 SPEC §4 counters
 *   -> toStream().to(output topic): key int32 row key (month<<13 | municipality<<3
 *      | visitation ordinal), value 25 big-endian int32 counters (the upsert
 *      row; not the Avro Rollup encoding).
 *
 * --cache-bytes N: statestore.cache.max.bytes (Kafka Streams' default, 10 MB,
 * when not given; it serves the "rollups" KTable). --person-cache: give the
 * "persons" store a record cache too. Off by default, as a team tuning for
 * throughput would leave it: in month-major input a person recurs only after
 * every other person, so the cache never absorbs a write and only adds
 * eviction work (3.6 M records, 1 thread: 0.08 M/s with it, 0.15-0.17
 * without, 3.9 GB vs 0.7 GB peak RSS). The defaults are what
 * bench/kstreams.sh measures.
 *
 * Input it assumes: a pre-filled topic, read from its beginning to the end
 * offsets taken at start (consume-only benchmark). Records that regstream
 * would reject for person_id, period or paid_hours, or as undecodable, are
 * dropped and counted; municipality codes are NOT checked (clean input, as
 * the DuckDB peer assumes), so on input with unknown municipalities the CSV
 * differs from regstream's.
 *
 * When every input record is processed and every contribution aggregated, it
 * prints one line on stderr:
 *   kstreams: N records from T in S s (R M/s), R2 M/s from the first record,
 *   K thread(s), peak RSS M MB (VmHWM), rejected X, late Y, corrected Z
 * ("from start" is from main() entry, JVM start-up excluded), with --csv
 * writes the final KTable (read through an interactive query) as the SPEC §4
 * CSV, sorted and formatted as regstream's file mode writes it, then closes.
 *
 *   java -jar target/kstreams-rollup.jar --bootstrap HOST:PORT --topic pm
 *       [--threads 1] [--application-id ID] [--output-topic rollups-ks]
 *       [--state-dir DIR] [--csv OUT.csv] [--schema schemas/person_month.avsc]
 *       [--timeout-s 3600] [--cache-bytes N] [--person-cache]
 *       [--full-time-weekly-hours 18.5]
 *       [--durable-window-months 6] [--durable-run-months 3]
 *       [--project-start YYYYMM] [--project-end YYYYMM]
 */
package regstream.peer;

import java.io.BufferedWriter;
import java.io.File;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Collectors;

import org.apache.avro.Schema;
import org.apache.avro.io.BinaryDecoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

public final class KStreamsRollup {
  // ------------------------------------------------------------ constants

  static final String[] VISITATION = {"UNKNOWN", "JOBPARAT", "AKTIVITETSPARAT",
      "UDDANNELSESPARAT", "SELVFORSOERGENDE", "OEVRIG"};
  static final int BENEFIT_COUNT = 9; // NONE = 0 ... OTHER = 8
  static final String[] FIELDS = {"person_id", "period", "municipality", "visitation",
      "enrolled", "paid_hours", "education", "internship", "wage_subsidy", "flexjob",
      "disability_pension", "benefit"};
  static final String[] COLUMNS = {"members",
      "now_goal1", "now_goal2", "now_goal3", "now_none",
      "acc_goal1", "acc_goal2", "acc_goal3", "acc_none",
      "durable_full_goal1", "durable_full_goal2", "durable_full_goal3", "durable_full_none",
      "durable_partial_goal1", "durable_partial_goal2", "durable_partial_goal3",
      "durable_partial_none",
      "status_education", "status_employed_full", "status_employed_part", "status_flexjob",
      "status_disability_pension", "status_company_placement", "status_on_benefit",
      "status_self_supporting"};
  static final int NCOL = 25, C_NOW = 1, C_ACC = 5, C_DFULL = 9, C_DPART = 13, C_STATUS = 17;

  // Goals ranked so that max() is higher (mål 1 highest), as in rules.h.
  static final int GOAL_NONE = 0, GOAL_3 = 1, GOAL_2 = 2, GOAL_1 = 3;
  static final int ST_EDUCATION = 0, ST_EMPLOYED_FULL = 1, ST_EMPLOYED_PART = 2,
      ST_FLEXJOB = 3, ST_DISABILITY = 4, ST_PLACEMENT = 5, ST_ON_BENEFIT = 6,
      ST_SELF_SUPPORTING = 7;
  static final int DURABLE_NONE = 0, DURABLE_PARTIAL = 1, DURABLE_FULL = 2;

  // person state `entry` bits, as in rules.c
  static final int ENTRY_VISITATION = 0x07, ENTRY_MEMBER = 0x08, ENTRY_IN_LATEST = 0x10;

  // ------------------------------------------------------------ rule configuration (SPEC §3)

  static double fullTimeWeeklyHours = 18.5;
  static int durableWindowMonths = 6, durableRunMonths = 3;
  static int projectFirstMonth = 0, projectLastMonth = Integer.MAX_VALUE;
  static final double[] FULL_TIME_LIMIT = new double[32]; // fullTimeWeeklyHours * days
  static int windowMask;

  // ------------------------------------------------------------ counters shared by the threads

  static final AtomicLong processed = new AtomicLong(); // input records handled
  static final AtomicLong forwarded = new AtomicLong(); // contributions sent to groupBy
  static final AtomicLong aggregated = new AtomicLong(); // contributions summed
  static final AtomicLong rejected = new AtomicLong();
  static final AtomicLong late = new AtomicLong();
  static final AtomicLong corrected = new AtomicLong();
  static final AtomicLong firstNanos = new AtomicLong(0);
  static volatile long lastNanos;

  // ------------------------------------------------------------ months

  static int monthOf(int period) {
    return (period / 100) * 12 + period % 100 - 1;
  }

  static int periodOf(int month) {
    return (month / 12) * 100 + month % 12 + 1;
  }

  static boolean periodValid(int p) {
    int m = p % 100;
    return p >= 199001 && p <= 209912 && m >= 1 && m <= 12;
  }

  static int daysIn(int month) {
    int y = month / 12, m = month % 12 + 1;
    switch (m) {
      case 2:
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28;
      case 4: case 6: case 9: case 11:
        return 30;
      default:
        return 31;
    }
  }

  // ------------------------------------------------------------ SPEC §3 per person

  /** One decoded month (reused; EMPTY is a gap month). */
  static final class Month {
    long personId;
    int period, municipality, visitation, benefit;
    float paidHours;
    boolean enrolled, education, internship, wageSubsidy, flexjob, disabilityPension;
  }

  static final Month EMPTY = new Month();

  static int levelOf(Month r, boolean fullTime) {
    if (r.education || fullTime) return GOAL_1;
    if (r.paidHours > 0) return GOAL_2;
    if (r.internship || r.wageSubsidy) return GOAL_3;
    return GOAL_NONE;
  }

  static int statusOf(Month r, boolean fullTime) {
    if (r.education) return ST_EDUCATION;
    if (fullTime) return ST_EMPLOYED_FULL;
    if (r.paidHours > 0) return ST_EMPLOYED_PART;
    if (r.flexjob) return ST_FLEXJOB;
    if (r.disabilityPension) return ST_DISABILITY;
    if (r.internship || r.wageSubsidy) return ST_PLACEMENT;
    if (r.benefit != 0) return ST_ON_BENEFIT;
    return ST_SELF_SUPPORTING;
  }

  static boolean hasRun(int x, int run) {
    for (int i = 1; i < run && x != 0; i++) x &= x >>> 1;
    return x != 0;
  }

  static int durable(int employedBits, int fulltimeBits) {
    if (hasRun(fulltimeBits & windowMask, durableRunMonths)) return DURABLE_FULL;
    if (hasRun(employedBits & windowMask, durableRunMonths)) return DURABLE_PARTIAL;
    return DURABLE_NONE;
  }

  /**
   * A person's state, stored as 15 bytes: the two bit histories (bit i: month
   * latest - i), the latest month, entry municipality code, entry bits
   * (visitation, member, entered in latest), goals (bits 0-1 accumulated,
   * 2-3 accumulated before the latest month, 4-5 latest month's level) and the
   * latest month's status. The same layout as rules.h's person_state.
   */
  static final class PersonProcessor implements Processor<byte[], byte[], Long, byte[]> {
    private ProcessorContext<Long, byte[]> ctx;
    private KeyValueStore<Long, byte[]> store;
    private BinaryDecoder decoder;
    private final Month rec = new Month();
    private Record<byte[], byte[]> current;
    // the state being worked on
    private int employedBits, fulltimeBits, latestMonth, entryMunicipality, entry, goals,
        latestStatus;

    @Override
    public void init(ProcessorContext<Long, byte[]> context) {
      ctx = context;
      store = context.getStateStore("persons");
    }

    private boolean decode(byte[] value) {
      try {
        decoder = DecoderFactory.get().binaryDecoder(value, decoder);
        rec.personId = decoder.readLong();
        rec.period = decoder.readInt();
        rec.municipality = decoder.readInt();
        rec.visitation = decoder.readEnum();
        rec.enrolled = decoder.readBoolean();
        rec.paidHours = decoder.readFloat();
        rec.education = decoder.readBoolean();
        rec.internship = decoder.readBoolean();
        rec.wageSubsidy = decoder.readBoolean();
        rec.flexjob = decoder.readBoolean();
        rec.disabilityPension = decoder.readBoolean();
        rec.benefit = decoder.readEnum();
        return decoder.isEnd() && rec.visitation >= 0 && rec.visitation < VISITATION.length
            && rec.benefit >= 0 && rec.benefit < BENEFIT_COUNT;
      } catch (IOException | RuntimeException e) {
        return false;
      }
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
      long now = System.nanoTime();
      if (firstNanos.get() == 0) firstNanos.compareAndSet(0, now);
      current = record;
      byte[] value = record.value();
      if (value == null || !decode(value) || rec.personId <= 0 || !periodValid(rec.period)
          || Float.isNaN(rec.paidHours) || rec.paidHours < 0 || rec.paidHours > 744) {
        rejected.incrementAndGet();
        processed.incrementAndGet();
        return;
      }
      Long key = rec.personId;
      int month = monthOf(rec.period);
      byte[] st = store.get(key);
      if (st == null) {
        employedBits = fulltimeBits = latestMonth = entryMunicipality = entry = goals = 0;
        latestStatus = 0;
        push(month, rec);
      } else {
        ByteBuffer b = ByteBuffer.wrap(st);
        employedBits = b.getInt();
        fulltimeBits = b.getInt();
        latestMonth = b.getShort() & 0xffff;
        entryMunicipality = b.getShort();
        entry = b.get() & 0xff;
        goals = b.get() & 0xff;
        latestStatus = b.get() & 0xff;
        if (month < latestMonth) {
          late.incrementAndGet();
          processed.incrementAndGet();
          return;
        }
        if (month == latestMonth) {
          retractLatest();
          push(month, rec);
          corrected.incrementAndGet();
        } else {
          for (int gap = latestMonth + 1; gap < month; gap++) push(gap, EMPTY);
          push(month, rec);
        }
      }
      store.put(key, ByteBuffer.allocate(15).putInt(employedBits).putInt(fulltimeBits)
          .putShort((short) latestMonth).putShort((short) entryMunicipality)
          .put((byte) entry).put((byte) goals).put((byte) latestStatus).array());
      processed.incrementAndGet();
    }

    /** Append `month` with record r as the person's new latest month (rules.c push_month). */
    private void push(int month, Month r) {
      boolean fullTime = (double) r.paidHours * 7 > FULL_TIME_LIMIT[daysIn(month)];
      int level = levelOf(r, fullTime);
      int accBefore = goals & 3, acc = accBefore;
      int e = entry & ~ENTRY_IN_LATEST;
      employedBits = (employedBits << 1) | (r.paidHours > 0 ? 1 : 0);
      fulltimeBits = (fulltimeBits << 1) | (fullTime ? 1 : 0);
      if ((e & ENTRY_MEMBER) == 0 && r.enrolled) {
        e = r.visitation | ENTRY_MEMBER | ENTRY_IN_LATEST;
        entryMunicipality = r.municipality;
      }
      if ((e & ENTRY_MEMBER) != 0 && month >= projectFirstMonth && month <= projectLastMonth
          && level > acc) acc = level;
      entry = e;
      goals = acc | (accBefore << 2) | (level << 4);
      latestStatus = statusOf(r, fullTime);
      latestMonth = month;
      if ((entry & ENTRY_MEMBER) != 0) contribute(1);
    }

    /** Undo the latest month: its contribution and its effect on the state. */
    private void retractLatest() {
      if ((entry & ENTRY_MEMBER) != 0) contribute(-1);
      employedBits >>>= 1;
      fulltimeBits >>>= 1;
      goals = (goals >> 2) & 3;
      if ((entry & ENTRY_IN_LATEST) != 0) entry = 0;
    }

    /**
     * Forward the latest month's contribution: 9 bytes, the row key (int32)
     * then sign, now goal, accumulated goal, durable, status.
     */
    private void contribute(int sign) {
      int rowKey = (latestMonth << 13) | (entryMunicipality << 3) | (entry & ENTRY_VISITATION);
      byte[] c = ByteBuffer.allocate(9).putInt(rowKey).put((byte) sign)
          .put((byte) ((goals >> 4) & 3)).put((byte) (goals & 3))
          .put((byte) durable(employedBits, fulltimeBits)).put((byte) latestStatus).array();
      forwarded.incrementAndGet();
      ctx.forward(current.withKey(rec.personId).withValue(c));
    }
  }

  /** Sum one contribution into a row's 25 counters. */
  static int[] add(byte[] c, int[] row) {
    int sign = c[4], now = c[5], acc = c[6], dur = c[7], status = c[8];
    row[0] += sign;
    row[C_NOW + 3 - now] += sign;
    row[C_ACC + 3 - acc] += sign;
    if (dur == DURABLE_FULL) row[C_DFULL + 3 - acc] += sign;
    else if (dur == DURABLE_PARTIAL) row[C_DPART + 3 - acc] += sign;
    row[C_STATUS + status] += sign;
    aggregated.incrementAndGet();
    lastNanos = System.nanoTime();
    return row;
  }

  /** 25 big-endian int32 counters. */
  static final class RowSerde implements Serde<int[]> {
    @Override
    public Serializer<int[]> serializer() {
      return (topic, row) -> {
        if (row == null) return null;
        ByteBuffer b = ByteBuffer.allocate(NCOL * 4);
        for (int v : row) b.putInt(v);
        return b.array();
      };
    }

    @Override
    public Deserializer<int[]> deserializer() {
      return (topic, bytes) -> {
        if (bytes == null) return null;
        ByteBuffer b = ByteBuffer.wrap(bytes);
        int[] row = new int[NCOL];
        for (int i = 0; i < NCOL; i++) row[i] = b.getInt();
        return row;
      };
    }
  }

  // ------------------------------------------------------------ main

  static void die(String msg) {
    System.err.println("kstreams: error: " + msg);
    System.exit(1);
  }

  static String need(String[] args, int i) {
    if (i >= args.length) die(args[i - 1] + " needs a value");
    return args[i];
  }

  static int parsePeriodOption(String name, String v) {
    int p = Integer.parseInt(v);
    if (!periodValid(p)) die(name + " must be a month YYYYMM in 199001..209912, got " + v);
    return p;
  }

  public static void main(String[] args) throws Exception {
    final long startNanos = System.nanoTime();
    String bootstrap = null, topic = null, appId = null, outputTopic = "rollups-ks",
        stateDir = null, csv = null, schemaPath = null;
    int threads = 1;
    long timeoutS = 3600, cacheBytes = -1;
    boolean personCache = false;
    int projectStart = 0, projectEnd = 0;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--bootstrap": bootstrap = need(args, ++i); break;
        case "--topic": topic = need(args, ++i); break;
        case "--application-id": appId = need(args, ++i); break;
        case "--output-topic": outputTopic = need(args, ++i); break;
        case "--state-dir": stateDir = need(args, ++i); break;
        case "--csv": csv = need(args, ++i); break;
        case "--schema": schemaPath = need(args, ++i); break;
        case "--threads": threads = Integer.parseInt(need(args, ++i)); break;
        case "--timeout-s": timeoutS = Long.parseLong(need(args, ++i)); break;
        case "--cache-bytes": cacheBytes = Long.parseLong(need(args, ++i)); break;
        case "--person-cache": personCache = true; break;
        case "--full-time-weekly-hours":
          fullTimeWeeklyHours = Double.parseDouble(need(args, ++i));
          break;
        case "--durable-window-months":
          durableWindowMonths = Integer.parseInt(need(args, ++i));
          break;
        case "--durable-run-months": durableRunMonths = Integer.parseInt(need(args, ++i)); break;
        case "--project-start":
          projectStart = parsePeriodOption("--project-start", need(args, ++i));
          break;
        case "--project-end":
          projectEnd = parsePeriodOption("--project-end", need(args, ++i));
          break;
        default:
          die("unknown option " + args[i] + " (see the top comment of KStreamsRollup.java)");
      }
    }
    if (bootstrap == null || topic == null) die("--bootstrap and --topic are required");
    if (threads < 1) die("--threads must be >= 1");
    if (!(fullTimeWeeklyHours >= 0 && fullTimeWeeklyHours <= 168))
      die("--full-time-weekly-hours must be between 0 and 168");
    if (durableWindowMonths < 1 || durableWindowMonths > 31 || durableRunMonths < 1
        || durableRunMonths > durableWindowMonths)
      die("need 1 <= durable-run-months <= durable-window-months <= 31");
    if (projectStart != 0 && projectEnd != 0 && projectStart > projectEnd)
      die("--project-start is after --project-end");
    for (int d = 0; d < 32; d++) FULL_TIME_LIMIT[d] = fullTimeWeeklyHours * d;
    windowMask = (int) ((1L << durableWindowMonths) - 1);
    if (projectStart != 0) projectFirstMonth = monthOf(projectStart);
    if (projectEnd != 0) projectLastMonth = monthOf(projectEnd);
    if (schemaPath != null) checkSchema(schemaPath);
    if (appId == null) appId = "kstreams-rollup-" + System.currentTimeMillis();
    Path state = stateDir != null ? Paths.get(stateDir)
        : Files.createTempDirectory("kstreams-rollup-");

    // The input's extent (a pre-filled topic) and the output topic.
    long total = 0;
    int partitions;
    Properties ap = new Properties();
    ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    try (Admin admin = Admin.create(ap)) {
      TopicDescription td;
      try {
        td = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
      } catch (ExecutionException e) {
        die("cannot describe topic " + topic + " at " + bootstrap + ": " + e.getCause());
        return;
      }
      partitions = td.partitions().size();
      Map<TopicPartition, OffsetSpec> latest = new HashMap<>(), earliest = new HashMap<>();
      for (var part : td.partitions()) {
        latest.put(new TopicPartition(topic, part.partition()), OffsetSpec.latest());
        earliest.put(new TopicPartition(topic, part.partition()), OffsetSpec.earliest());
      }
      var ends = admin.listOffsets(latest).all().get();
      var begins = admin.listOffsets(earliest).all().get();
      for (TopicPartition tp : ends.keySet())
        total += ends.get(tp).offset() - begins.get(tp).offset();
      try {
        admin.createTopics(List.of(new NewTopic(outputTopic, Optional.of(partitions),
            Optional.empty()))).all().get();
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof TopicExistsException))
          die("cannot create output topic " + outputTopic + ": " + e.getCause());
      }
    }
    if (total == 0) die("topic " + topic + " is empty: produce the input first");

    // The topology.
    StreamsBuilder b = new StreamsBuilder();
    var persons = Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("persons"),
        Serdes.Long(), Serdes.ByteArray());
    b.addStateStore(personCache ? persons.withCachingEnabled() : persons.withCachingDisabled());
    KStream<byte[], byte[]> in =
        b.stream(topic, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()));
    KStream<Long, byte[]> contributions = in.process(PersonProcessor::new, "persons");
    KTable<Integer, int[]> rollups = contributions
        .groupBy((person, c) -> ByteBuffer.wrap(c).getInt(0),
            Grouped.with("by-row", Serdes.Integer(), Serdes.ByteArray()))
        .aggregate(() -> new int[NCOL], (row, c, counts) -> add(c, counts),
            Materialized.<Integer, int[], KeyValueStore<Bytes, byte[]>>as("rollups")
                .withKeySerde(Serdes.Integer()).withValueSerde(new RowSerde()));
    rollups.toStream().to(outputTopic, Produced.with(Serdes.Integer(), new RowSerde()));

    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    p.put(StreamsConfig.STATE_DIR_CONFIG, state.toString());
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    if (cacheBytes >= 0) p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, cacheBytes);

    KafkaStreams streams = new KafkaStreams(b.build(), p);
    streams.setUncaughtExceptionHandler(e -> {
      System.err.println("kstreams: error: stream thread failed: " + e);
      e.printStackTrace();
      System.exit(1);
      return null;
    });
    streams.start();
    System.err.printf("kstreams: %d records in %d partitions of %s, application.id %s, "
        + "%d stream thread(s), at-least-once, state in %s%n", total, partitions, topic, appId,
        threads, state);

    long deadline = startNanos + timeoutS * 1_000_000_000L;
    long nextProgress = System.nanoTime() + 5_000_000_000L;
    while (true) {
      long done = processed.get();
      if (done >= total && aggregated.get() == forwarded.get()) break;
      long t = System.nanoTime();
      if (t > deadline)
        die(String.format("timed out after %d s: %d of %d records processed, %d of %d "
            + "contributions aggregated", timeoutS, done, total, aggregated.get(),
            forwarded.get()));
      if (t > nextProgress) {
        System.err.printf("kstreams: %d of %d records, %d/%d contributions aggregated%n",
            done, total, aggregated.get(), forwarded.get());
        nextProgress = t + 5_000_000_000L;
      }
      Thread.sleep(2);
    }
    long end = lastNanos;
    long n = processed.get();
    double fromStart = (end - startNanos) / 1e9, fromFirst = (end - firstNanos.get()) / 1e9;
    long hwmKb = vmHwmKb();
    System.err.printf("kstreams: %d records from %s in %.2f s (%.3f M/s), %.3f M/s from the "
        + "first record, %d thread(s), peak RSS %d MB (VmHWM), rejected %d, late %d, "
        + "corrected %d%n", n, topic, fromStart, n / fromStart / 1e6, n / fromFirst / 1e6,
        threads, hwmKb / 1024, rejected.get(), late.get(), corrected.get());

    if (csv != null) {
      ReadOnlyKeyValueStore<Integer, int[]> view = streams.store(
          StoreQueryParameters.fromNameAndType("rollups", QueryableStoreTypes.keyValueStore()));
      int rows = writeCsv(view, csv);
      System.err.printf("kstreams: wrote %d rows to %s%n", rows, csv);
    }
    streams.close(Duration.ofSeconds(60));
    if (stateDir == null) deleteTree(state.toFile());
    System.exit(0);
  }

  /** The reader schema's fields must be the ones this decoder reads, in this order. */
  static void checkSchema(String path) throws IOException {
    Schema s = new Schema.Parser().parse(new File(path));
    List<String> names = s.getFields().stream().map(Schema.Field::name)
        .collect(Collectors.toList());
    if (!names.equals(List.of(FIELDS)))
      die(path + ": fields " + names + " are not the PersonMonth fields this peer decodes");
  }

  /** The SPEC §4 CSV, sorted by period, municipality, visitation symbol; rows with members > 0. */
  static int writeCsv(ReadOnlyKeyValueStore<Integer, int[]> view, String path)
      throws IOException {
    List<KeyValue<Integer, int[]>> rows = new ArrayList<>();
    try (KeyValueIterator<Integer, int[]> it = view.all()) {
      while (it.hasNext()) {
        KeyValue<Integer, int[]> kv = it.next();
        if (kv.value[0] > 0) rows.add(kv);
      }
    }
    rows.sort((a, c) -> {
      int ka = a.key, kc = c.key;
      if ((ka >>> 13) != (kc >>> 13)) return Integer.compare(ka >>> 13, kc >>> 13);
      int ma = (ka >>> 3) & 1023, mc = (kc >>> 3) & 1023;
      if (ma != mc) return Integer.compare(ma, mc);
      return VISITATION[ka & 7].compareTo(VISITATION[kc & 7]);
    });
    Path tmp = Paths.get(path + ".tmp");
    try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.US_ASCII)) {
      w.write("period,municipality,visitation," + String.join(",", COLUMNS) + "\n");
      StringBuilder sb = new StringBuilder(256);
      for (KeyValue<Integer, int[]> kv : rows) {
        int k = kv.key;
        sb.setLength(0);
        sb.append(periodOf(k >>> 13)).append(',').append((k >>> 3) & 1023).append(',')
            .append(VISITATION[k & 7]);
        for (int v : kv.value) sb.append(',').append(Integer.toUnsignedString(v));
        sb.append('\n');
        w.write(sb.toString());
      }
    }
    Files.move(tmp, Paths.get(path), StandardCopyOption.REPLACE_EXISTING,
        StandardCopyOption.ATOMIC_MOVE);
    return rows.size();
  }

  static long vmHwmKb() {
    try {
      for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
        if (line.startsWith("VmHWM:"))
          return Long.parseLong(line.replaceAll("[^0-9]", ""));
      }
    } catch (IOException e) {
      // not Linux: no figure
    }
    return -1;
  }

  static void deleteTree(File f) {
    File[] kids = f.listFiles();
    if (kids != null) for (File k : kids) deleteTree(k);
    f.delete();
  }
}
