#!/usr/bin/env python3
"""tests/deploy/compose_check.py — regstream's promises about deploy/compose.yaml,
read from the project that tests/deploy/compose_load.py loaded (its JSON).

    compose_check.py PROJECT.json REPO_ROOT

Kafka runs as one KRaft node (broker and controller, its own voter, no
ZooKeeper) from the apache/kafka image; regstream is built from
deploy/Dockerfile in the repository root and runs Kafka mode with
--snapshot-topic (no --snapshot-dir, no volume), --metrics-listen
0.0.0.0:9464 published on 127.0.0.1 only, --log-format json, a 90 s stop
grace, after Kafka is healthy; PostgreSQL 15 has its password from the
environment, not from the file; the issue-12 exporter is not a service yet.
Prints one line per check and "compose_check: N passed, M failed".
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402



def main():
    p = json.load(open(sys.argv[1]))
    repo = os.path.realpath(sys.argv[2])
    s = p.get("services", {})
    check(set(s) == {"kafka", "regstream", "postgres"},
          f"services are kafka, regstream, postgres (are {sorted(s)})")
    k = s.get("kafka", {})
    env = k.get("environment", {})
    check(k.get("image", "").startswith("apache/kafka:4."), f"Kafka image {k.get('image')} (apache/kafka 4.x)")
    check(set(env.get("KAFKA_PROCESS_ROLES", "").split(",")) == {"broker", "controller"}
          and env.get("KAFKA_CONTROLLER_QUORUM_VOTERS") == f"{env.get('KAFKA_NODE_ID')}@kafka:9093"
          and "CONTROLLER" in env.get("KAFKA_CONTROLLER_LISTENER_NAMES", "")
          and not any("ZOOKEEPER" in key for key in env),
          "Kafka is one KRaft node: broker and controller, its own voter, no ZooKeeper")
    check("PLAINTEXT://kafka:9092" in env.get("KAFKA_ADVERTISED_LISTENERS", ""),
          "Kafka advertises kafka:9092 to the compose network")
    check(all(env.get(f"KAFKA_{x}_REPLICATION_FACTOR") == "1" for x in ("OFFSETS_TOPIC", "TRANSACTION_STATE_LOG")),
          "internal topics with one replica (one broker)")
    check(bool(k.get("healthcheck", {}).get("test")), "Kafka has a healthcheck")

    r = s.get("regstream", {})
    b = r.get("build", {})
    check(os.path.realpath(b.get("context", "")) == repo and b.get("dockerfile") == "deploy/Dockerfile"
          and os.path.isfile(os.path.join(repo, b.get("dockerfile", ""))),
          "regstream is built from deploy/Dockerfile with the repository as context")
    cmd = r.get("command") or []

    def arg(opt):
        return cmd[cmd.index(opt) + 1] if opt in cmd and cmd.index(opt) + 1 < len(cmd) else None

    check(cmd[:1] == ["run"] and arg("--brokers") == "kafka:9092", "regstream runs Kafka mode against kafka:9092")
    check(bool(arg("--snapshot-topic")) and "--snapshot-dir" not in cmd and not r.get("volumes"),
          f"--snapshot-topic {arg('--snapshot-topic')}, no --snapshot-dir, no volume")
    check(arg("--metrics-listen") == "0.0.0.0:9464", "--metrics-listen 0.0.0.0:9464 inside the container")
    check(arg("--log-format") == "json", "--log-format json")
    check(arg("--replication-factor") == "1", "--replication-factor 1 for the single broker")
    ports = r.get("ports", [])
    check(len(ports) == 1 and ports[0].get("target") == 9464 and ports[0].get("host_ip") == "127.0.0.1",
          "port 9464 published on the host's 127.0.0.1 only")
    check(r.get("depends_on", {}).get("kafka", {}).get("condition") == "service_healthy",
          "regstream starts after Kafka is healthy")
    check(r.get("stop_grace_period") == "1m30s" and r.get("stop_signal", "SIGTERM") == "SIGTERM",
          f"stop: SIGTERM with 90 s grace (is {r.get('stop_grace_period')})")
    check(r.get("read_only") is True and r.get("cap_drop") == ["ALL"]
          and "no-new-privileges:true" in r.get("security_opt", []) and r.get("user", "").split(":")[0] == "10001",
          "regstream: read-only root, no capabilities, no new privileges, uid 10001")

    pg = s.get("postgres", {})
    check(pg.get("image") == "postgres:15", f"PostgreSQL image {pg.get('image')}")
    pw = pg.get("environment", {}).get("POSTGRES_PASSWORD")
    check(pw == os.environ.get("POSTGRES_PASSWORD") and pw not in open(os.path.join(repo, "deploy/compose.yaml")).read(),
          "PostgreSQL's password comes from the environment, not the file")
    for name, svc in s.items():
        for port in svc.get("ports", []):
            check(port.get("host_ip") == "127.0.0.1", f"{name}: port {port.get('published')} on 127.0.0.1 only")
    text = open(os.path.join(repo, "deploy/compose.yaml")).read()
    check("exporter" not in s and "# exporter:" in text and "--postgres" in text and "--follow" in text,
          "the issue-12 exporter (export --postgres ... --follow) is a commented block, not a service")


if __name__ == "__main__":
    main()
    finish("compose_check")
