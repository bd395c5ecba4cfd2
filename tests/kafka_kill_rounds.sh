# tests/kafka_kill_rounds.sh — sourced by kafka_snapshot.sh (snapshots in a
# folder) and kafka_snapshot_topic.sh (in a topic): the kill -9 rounds they
# share. Each round has its own group, output topic and snapshot store: up
# to 4 runs killed at random moments, then a last run to the end, whose
# export must equal $TMP/file.csv. Most kills wait for the run's snapshots
# to move, then a random fraction of a second more; every 4th comes at a
# random moment 0.1 to 1.1 s after the start (mostly before the group is
# joined or the first snapshot written). A kill counts as mid-processing
# when the run's snapshots moved forward and still stop short of the end of
# the topic. Rounds go on until TRIALS such kills (at most 4 * TRIALS runs).
#
# kill_rounds TOTAL: the caller has B, TMP, RS, TRIALS, FAST, THROTTLE,
# interval (--snapshot-interval), pids (the array its cleanup kills), and
# the functions
#   round_store N   sets store_args (the snapshot options of round N) and
#                   store (what snap_sum reads);
#   snap_sum STORE  the sum over partitions of their newest snapshot's
#                   position;
#   launch LOG ARGS... &-able: one `regstream run ARGS...` with its output in LOG.
# Sets killed, mid, runs, round, rounds_exact, and run_args and store as
# they were in the last round; says bad for each round that did not end
# exact.
kill_rounds() {
  local total=$1 before after pid
  killed=0 mid=0 runs=0 round=0 rounds_exact=0
  while [ $mid -lt "$TRIALS" ] && [ $runs -lt $((4 * TRIALS)) ]; do
    round=$((round + 1))
    round_store "$round"
    run_args=(--brokers "$B" --topic pm --group "g_kill$round" --output-topic "out_kill$round"
      --dead-letter-topic "dlq_kill$round" --flush-ms 200 --threads 2 "${store_args[@]}"
      --snapshot-interval "$interval" --exit-at-eof "${FAST[@]}")
    before=0
    for _ in 1 2 3 4; do
      runs=$((runs + 1))
      launch "$TMP/kill$runs.log" "${run_args[@]}" "${THROTTLE[@]}" &
      pid=$!
      pids+=("$pid")
      if [ $((runs % 4)) = 0 ]; then
        sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
        sleep 0.1
      else
        # once its snapshots have moved on (it is processing, at any speed,
        # sanitizers included), then 0 to 0.5 s more
        for _ in $(seq 600); do
          [ "$(snap_sum "$store")" -gt "$before" ] && break
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.05
        done
        sleep "0.$((RANDOM % 5))$((RANDOM % 10))"
      fi
      kill -9 "$pid" 2>/dev/null && killed=$((killed + 1))
      wait "$pid" 2>/dev/null
      pids=("${pids[@]/$pid/}")
      after=$(snap_sum "$store")
      if [ "$after" -gt "$before" ] && [ "$after" -lt "$total" ]; then mid=$((mid + 1)); fi
      before=$after
      [ "$after" -ge "$total" ] && break
    done
    if timeout 300 "$RS" run "${run_args[@]}" >"$TMP/final$round.log" 2>&1 &&
      export_equals "kill$round" "out_kill$round" "$TMP/file.csv"; then
      rounds_exact=$((rounds_exact + 1))
    else
      bad "round $round: after kill -9 and restarts the export differs or the last run failed: $(tail -2 "$TMP/final$round.log" | tr '\n' ' ') $(diff "$TMP/file.csv" "$TMP/kill$round.csv" 2>&1 | head -3 | tr '\n' ' ')"
    fi
  done
}
