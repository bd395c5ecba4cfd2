#!/usr/bin/env python3
"""fake_registry.py - a fake Confluent Schema Registry for the tests
(tests/test_app_registry.c, tests/kafka_registry.sh), standard library only.

GET /schemas/ids/ID answers, by ID (--schema ID=FILE serves FILE's text as
id ID's Avro schema; other ids are Confluent's 404 with error_code 40403):

  fixed ids (--canned): 900 404 without a Confluent body, 901 401, 902 403,
  903 500, 904 503, 905 sleeps --sleep seconds, 906 answers 503 once, then
  its schema (the schema of --schema 906=FILE)

--script "503:S1,sleep:S2,ok" plays phases, timed from the first request:
503 for S1 seconds, then requests that sleep --sleep seconds (past the
client's timeout) for S2 seconds, then normal answers; "down" as the last
phase answers 503 for ever. Applies to every id, or with --script-ids A,B to
those ids only (timed from the first request for one of them); --down-ids A,B
answers 503 for those ids always.

--tls CERT KEY serves HTTPS; --client-ca CA requires a client certificate
signed by CA; --basic USER:PASS or --token TOKEN require that Authorization
and answer 401 without it. Prints the port it listens on (--port 0: any) on
stdout, one line, then serves until killed; logs one line per request to
--log FILE (method, path, status).
"""
import argparse
import base64
import http.server
import json
import ssl
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, default=0)
ap.add_argument("--schema", action="append", default=[])
ap.add_argument("--canned", action="store_true")
ap.add_argument("--sleep", type=float, default=3.0)
ap.add_argument("--script", default="ok")
ap.add_argument("--tls", nargs=2)
ap.add_argument("--client-ca")
ap.add_argument("--basic")
ap.add_argument("--token")
ap.add_argument("--log")
ap.add_argument("--down-ids", default="")
ap.add_argument("--script-ids", default="")
args = ap.parse_args()

down_ids = {int(x) for x in args.down_ids.split(",") if x}
script_ids = {int(x) for x in args.script_ids.split(",") if x}
schemas = {}
for item in args.schema:
    sid, path = item.split("=", 1)
    with open(path) as f:
        schemas[int(sid)] = f.read()

phases = []
for part in args.script.split(","):
    name, _, secs = part.partition(":")
    phases.append((name, float(secs) if secs else None))

lock = threading.Lock()
state = {"first": None, "seen906": 0}
log = open(args.log, "a", buffering=1) if args.log else None


def phase_now():
    with lock:
        if state["first"] is None:
            state["first"] = time.monotonic()
        elapsed = time.monotonic() - state["first"]
    for name, secs in phases:
        if secs is None:
            return name
        if elapsed < secs:
            return name
        elapsed -= secs
    return "ok"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def answer(self, status, body, ctype="application/vnd.schemaregistry.v1+json"):
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        if log:
            log.write("%s %s %d\n" % (self.command, self.path, status))

    def authorized(self):
        got = self.headers.get("Authorization", "")
        if args.basic:
            return got == "Basic " + base64.b64encode(args.basic.encode()).decode()
        if args.token:
            return got == "Bearer " + args.token
        return True

    def do_GET(self):
        if not self.authorized():
            self.answer(401, json.dumps({"error_code": 40101, "message": "Unauthorized"}))
            return
        prefix = "/schemas/ids/"
        if not self.path.startswith(prefix) or not self.path[len(prefix):].isdigit():
            self.answer(404, "<html><body>Not Found</body></html>", "text/html")
            return
        sid = int(self.path[len(prefix):])
        if sid in down_ids:
            self.answer(503, json.dumps({"error_code": 50301, "message": "unavailable"}))
            return
        phase = phase_now() if not script_ids or sid in script_ids else "ok"
        if phase == "503" or phase == "down":
            self.answer(503, json.dumps({"error_code": 50301, "message": "unavailable"}))
            return
        if phase == "sleep":
            time.sleep(args.sleep)
            self.answer(503, json.dumps({"error_code": 50302, "message": "slow"}))
            return
        if args.canned:
            if sid == 900:
                return self.answer(404, "<html><body>Not Found</body></html>", "text/html")
            if sid in (901, 902, 903, 904):
                code = {901: 401, 902: 403, 903: 500, 904: 503}[sid]
                return self.answer(code, json.dumps({"error_code": code * 100, "message": "x"}))
            if sid == 905:
                time.sleep(args.sleep)
                return self.answer(200, json.dumps({"schema": schemas.get(1, "{}")}))
            if sid == 906:
                with lock:
                    state["seen906"] += 1
                    first = state["seen906"] == 1
                if first:
                    return self.answer(503, json.dumps({"error_code": 50301, "message": "x"}))
        if sid in schemas:
            self.answer(200, json.dumps({"schema": schemas[sid]}))
        else:
            self.answer(404, json.dumps({"error_code": 40403, "message": "Schema not found"}))


server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
server.daemon_threads = True
if args.tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls[0], args.tls[1])
    if args.client_ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.client_ca)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
sys.stdout.close()
server.serve_forever()
