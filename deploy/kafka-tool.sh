#!/usr/bin/env bash
# deploy/kafka-tool.sh - run a Kafka 4.3.1 command-line tool (Java class) from
# the jars that deploy/kafka-local.sh caches, with the right classpath and a
# log4j2 config (deploy/kafka/log4j2-tools.xml: warnings on stderr only).
#
# Owned by infrastructure, together with deploy/kafka-local.sh and deploy/kafka/.
#
# Usage: deploy/kafka-tool.sh ALIAS|JAVA_CLASS [ARGS...]
#   Aliases (Kafka 4.3.1 classes):
#     topics              org.apache.kafka.tools.TopicCommand
#     console-consumer    org.apache.kafka.tools.consumer.ConsoleConsumer
#     console-producer    org.apache.kafka.tools.ConsoleProducer
#     consumer-groups     org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
#     producer-perf       org.apache.kafka.tools.ProducerPerformance
#     consumer-perf       org.apache.kafka.tools.ConsumerPerformance
#     get-offsets         org.apache.kafka.tools.GetOffsetShell
#     delete-records      org.apache.kafka.tools.DeleteRecordsCommand
#     broker-api-versions org.apache.kafka.tools.BrokerApiVersionsCommand
#     metadata-quorum     org.apache.kafka.tools.MetadataQuorumCommand
#     configs             kafka.admin.ConfigCommand
#     storage             kafka.tools.StorageTool
#   Anything else is taken as a fully qualified class name.
# Examples:
#   B=$(deploy/kafka-local.sh start)
#   deploy/kafka-tool.sh topics --bootstrap-server "$B" --create --topic t --partitions 6 --replication-factor 1
#   deploy/kafka-tool.sh producer-perf --bootstrap-server "$B" --topic t --num-records 1000000 \
#       --record-size 48 --throughput -1 --command-property linger.ms=5 batch.size=262144 compression.type=lz4
#   (4.3.1 still takes the older --producer-props bootstrap.servers=... form, with a deprecation note;
#    consumer-perf's --messages is likewise deprecated in favour of --num-records)
#   deploy/kafka-tool.sh consumer-perf --bootstrap-server "$B" --topic t --num-records 1000000
# Environment: REGSTREAM_KAFKA_CACHE (the jars, as for kafka-local.sh),
#   REGSTREAM_KAFKA_TOOL_HEAP_OPTS (default "-Xmx512m").
# Fetches the jars first (via kafka-local.sh fetch) if the cache is not there.
set -euo pipefail

KAFKA_VERSION=4.3.1 # keep in step with deploy/kafka-local.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${REGSTREAM_KAFKA_CACHE:-$HOME/.cache/regstream/kafka-$KAFKA_VERSION}
HEAP_OPTS=${REGSTREAM_KAFKA_TOOL_HEAP_OPTS:--Xmx512m}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

(($# >= 1)) || usage
case $1 in
-h | --help | help) usage ;;
topics) class=org.apache.kafka.tools.TopicCommand ;;
console-consumer) class=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
console-producer) class=org.apache.kafka.tools.ConsoleProducer ;;
consumer-groups) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
producer-perf) class=org.apache.kafka.tools.ProducerPerformance ;;
consumer-perf) class=org.apache.kafka.tools.ConsumerPerformance ;;
get-offsets) class=org.apache.kafka.tools.GetOffsetShell ;;
delete-records) class=org.apache.kafka.tools.DeleteRecordsCommand ;;
broker-api-versions) class=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
metadata-quorum) class=org.apache.kafka.tools.MetadataQuorumCommand ;;
configs) class=kafka.admin.ConfigCommand ;;
storage) class=kafka.tools.StorageTool ;;
-*) printf 'kafka-tool: unknown option %s (the first argument is an alias or a class)\n' "$1" >&2; exit 2 ;;
*) class=$1 ;;
esac
shift

if [[ ! -f $CACHE/.fetched || ! -f $CACHE/kafka-tools-$KAFKA_VERSION.jar ]]; then
  "$HERE/kafka-local.sh" fetch
fi

# the same Java >= 17 that the broker uses (installed if missing)
java=$("$HERE/kafka-local.sh" java)

# shellcheck disable=SC2086 # HEAP_OPTS is a list of JVM flags
exec "$java" $HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$HERE/kafka/log4j2-tools.xml" \
  -cp "$CACHE/*" "$class" "$@"
