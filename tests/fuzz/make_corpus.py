#!/usr/bin/env python3
# make_corpus.py — owned by the fuzzing work (tests/fuzz/): writes the seed
# corpora of tests/fuzz/corpus/<harness>/ (seed-* files; crash reproducers
# found by fuzzing are kept there too, named crash-* or repro-*, and are not
# touched). Run from the repository root after a normal build:
#   python3 tests/fuzz/make_corpus.py build/bench/regstream-gen build/regstream
# The container seeds come from the project's own generator (every codec, with
# and without stream faults) plus files written here with evolved writer
# schemas and deliberate damage; the decode seeds are one datum per writer
# schema of fuzz_decode.c (byte 0 picks the schema, in that file's order).
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")

VIS = ["UNKNOWN", "JOBPARAT", "AKTIVITETSPARAT", "UDDANNELSESPARAT", "SELVFORSOERGENDE", "OEVRIG"]
BEN = ["NONE", "KONTANTHJAELP", "INTEGRATIONSYDELSE", "UDDANNELSESHJAELP", "RESSOURCEFORLOEB",
       "SYGEDAGPENGE", "LEDIGHEDSYDELSE", "DAGPENGE", "OTHER"]


def enum(name, symbols):
    return {"type": "enum", "name": name, "symbols": symbols}


VIS_STD, BEN_STD = enum("Visitation", VIS), enum("Benefit", BEN)
VIS_REV, BEN_REV = enum("Visitation", VIS[::-1]), enum("Benefit", BEN[::-1])
VIS_EXTRA = enum("Visitation", ["UNKNOWN", "JOBPARAT", "NY_KATEGORI"] + VIS[2:] + ["ANDET"])
BEN_EXTRA = enum("Benefit", ["PENSION"] + BEN + ["BARSEL"])


def f(name, typ):
    return {"name": name, "type": typ}


def std_fields(vis, ben, pid="long", hours="float"):
    return [f("person_id", pid), f("period", "int"), f("municipality", "int"), f("visitation", vis),
            f("enrolled", "boolean"), f("paid_hours", hours), f("education", "boolean"),
            f("internship", "boolean"), f("wage_subsidy", "boolean"), f("flexjob", "boolean"),
            f("disability_pension", "boolean"), f("benefit", ben)]


def record(fields):
    return {"type": "record", "name": "PersonMonth", "namespace": "regstream", "fields": fields}


EXTRA = {"type": "record", "name": "Extra", "fields": [
    f("a", "int"), f("b", {"type": "array", "items": "long"}),
    f("c", {"type": "map", "values": "double"}), f("d", {"type": "fixed", "name": "F3", "size": 3}),
    f("e", "null")]}
ADDED = record([f("source", "string"), f("person_id", "long"), f("extra", EXTRA),
                f("period", "int"), f("municipality", "int"), f("visitation", VIS_STD),
                f("tags", {"type": "array", "items": "string"}), f("enrolled", "boolean"),
                f("paid_hours", "float"),
                f("note", ["null", "string", "bytes", enum("Kind", ["A", "B", "C"])]),
                f("education", "boolean"), f("internship", "boolean"), f("wage_subsidy", "boolean"),
                f("attrs", {"type": "map", "values": ["null", "int", "Extra",
                                                      {"type": "array", "items": "F3"}]}),
                f("flexjob", "boolean"), f("disability_pension", "boolean"), f("benefit", BEN_STD),
                f("weight", "double"), f("flag", "boolean"), f("n", "int"), f("l", "long"),
                f("f", "float"), f("raw", "bytes"),
                f("empty", {"type": "array", "items": {"type": "record", "name": "Nothing",
                                                       "fields": [f("z", "null")]}}),
                f("chain", ["null", {"type": "record", "name": "Node", "fields": [
                    f("v", "int"), f("next", ["null", "Node"])]}])])
REMOVED = record([x for x in std_fields(VIS_STD, BEN_STD)
                  if x["name"] not in ("visitation", "benefit")])
UNIONS = record([f("person_id", ["null", "int", "long"]), f("period", ["int", "null"]),
                 f("municipality", "int"), f("visitation", ["null", VIS_STD]),
                 f("enrolled", "boolean"), f("paid_hours", ["null", "float"]),
                 f("education", "boolean"), f("internship", "boolean"),
                 f("wage_subsidy", "boolean"), f("flexjob", "boolean"),
                 f("disability_pension", ["boolean", "string"]), f("benefit", [BEN_STD, "null"])])
_std = {x["name"]: x for x in std_fields(VIS_REV, BEN_STD)}
REORDERED = record([_std[n] for n in ("benefit", "flexjob", "paid_hours", "period",
                                      "disability_pension", "visitation", "person_id", "education",
                                      "enrolled", "wage_subsidy", "municipality", "internship")])

with open(os.path.join(ROOT, "schemas", "person_month.avsc")) as fh:
    READER = json.load(fh)

# The order of fuzz_decode.c's writer_schemas.
SCHEMAS = [READER, ADDED, REMOVED, record(std_fields(VIS_REV, BEN_REV)),
           record(std_fields(VIS_EXTRA, BEN_EXTRA)),
           record(std_fields(VIS_STD, BEN_STD, pid="int", hours="int")),
           record(std_fields(VIS_STD, BEN_STD, hours="long")), UNIONS, REORDERED]

# ---- a small Avro binary encoder ----


def varint(n):
    u = (n << 1) ^ (n >> 63)
    u &= (1 << 64) - 1
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def encode(schema, value, names):
    if isinstance(schema, str):
        if schema in names:
            return encode(names[schema], value, names)
        if schema == "null":
            return b""
        if schema == "boolean":
            return b"\x01" if value else b"\x00"
        if schema in ("int", "long"):
            return varint(value)
        if schema == "float":
            return struct.pack("<f", value)
        if schema == "double":
            return struct.pack("<d", value)
        if schema in ("bytes", "string"):
            data = value.encode() if isinstance(value, str) else value
            return varint(len(data)) + data
        raise ValueError(schema)
    if isinstance(schema, list):
        branch, v = value
        return varint(branch) + encode(schema[branch], v, names)
    t = schema["type"]
    if "name" in schema and t in ("record", "enum", "fixed"):
        names[schema["name"]] = schema
    if t == "record":
        out = b""
        for fld in schema["fields"]:
            out += encode(fld["type"], value[fld["name"]], names)
        return out
    if t == "enum":
        return varint(schema["symbols"].index(value) if isinstance(value, str) else value)
    if t == "fixed":
        return value
    if t in ("array", "map"):
        if not value:
            return b"\x00"
        out = varint(len(value))
        for item in value:
            if t == "map":
                out += encode("string", item[0], names)
                item = item[1]
            out += encode(schema["items" if t == "array" else "values"], item, names)
        return out + b"\x00"
    return encode(t, value, names)


def person(pid, period, muni, vis, hours, flags, ben):
    names = ["enrolled", "education", "internship", "wage_subsidy", "flexjob", "disability_pension"]
    r = {"person_id": pid, "period": period, "municipality": muni, "visitation": vis,
         "paid_hours": hours, "benefit": ben}
    for i, n in enumerate(names):
        r[n] = bool(flags >> i & 1)
    return r


SAMPLES = [person(1000003, 202302, 751, "AKTIVITETSPARAT", 37.5, 0b000001, "KONTANTHJAELP"),
           person(7, 201901, 101, "JOBPARAT", 160.0, 0b110111, "NONE"),
           person(-5, 209912, 999, "OEVRIG", 0.0, 0b000000, "OTHER")]


def datum_for(index, rec):
    schema = SCHEMAS[index]
    r = dict(rec)
    if index == 1:
        r.update(source="gen", extra={"a": 1, "b": [1, -2], "c": [("k", 1.5)], "d": b"abc",
                                      "e": None},
                 tags=["x", "yz"], note=(3, "B"), attrs=[("a", (1, 5)), ("b", (0, None)),
                                                         ("c", (3, [b"xyz"]))],
                 weight=2.0, flag=True, n=3, l=-4, f=0.5, raw=b"\x00\x01", empty=[{"z": None}, {"z": None}],
                 chain=(1, {"v": 1, "next": (1, {"v": 2, "next": (0, None)})}))
    if index == 5:
        r["paid_hours"] = int(r["paid_hours"])
    if index == 6:
        r["paid_hours"] = int(r["paid_hours"]) * 3
    if index == 7:
        r.update(person_id=(2, r["person_id"]), period=(0, r["period"]),
                 visitation=(1, r["visitation"]), paid_hours=(1, r["paid_hours"]),
                 disability_pension=(0, r["disability_pension"]), benefit=(0, r["benefit"]))
    return encode(schema, r, {})


# ---- container files ----
SYNC = bytes(range(0x30, 0x40))


def ocf(schema, codec, blocks, sync=SYNC, extra_meta=()):
    meta = [("avro.schema", json.dumps(schema).encode()), ("avro.codec", codec.encode())]
    meta += list(extra_meta)
    out = b"Obj\x01" + varint(len(meta))
    for k, v in meta:
        out += encode("string", k, {}) + encode("bytes", v, {})
    out += b"\x00" + sync
    for count, data in blocks:
        out += varint(count) + varint(len(data)) + data + sync
    return out


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as fh:
        fh.write(data)


def main():
    gen = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build/bench/regstream-gen")
    regstream = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "build/regstream")
    # decode: byte 0 = schema index
    for i in range(len(SCHEMAS)):
        for k, rec in enumerate(SAMPLES):
            write("decode", f"{i}-{k}", bytes([i]) + datum_for(i, rec))
    ident = datum_for(0, SAMPLES[0])
    write("decode", "0-truncated", bytes([0]) + ident[:-3])
    write("decode", "0-bad-enum", bytes([0]) + ident[:-1] + b"\x7e")
    write("decode", "0-long-varint", bytes([0]) + b"\xff" * 11 + ident)
    write("decode", "0-two", bytes([0]) + ident + datum_for(0, SAMPLES[1]))
    # schema: the writer schemas and a few that fail
    for i, s in enumerate(SCHEMAS):
        write("schema", f"{i}.json", json.dumps(s).encode())
    write("schema", "not-record.json", b'{"type":"array","items":"int"}')
    write("schema", "no-period.json",
          json.dumps(record([x for x in std_fields(VIS_STD, BEN_STD)
                             if x["name"] != "period"])).encode())
    write("schema", "bad-type.json",
          json.dumps(record(std_fields(VIS_STD, BEN_STD, hours="string"))).encode())
    write("schema", "broken.json", b'{"type":"record","name":"P","fields":[{"name":')
    # ocf and replay: generator files, every codec, plus files written here
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for codec in ("null", "deflate", "snappy", "lzma", "xz", "zstandard"):
            out = os.path.join(tmp, codec + ".avro")
            subprocess.run([gen, "--profile", "random", "--seed", "1", "--persons", "3",
                            "--months", "2", "--codec", codec, "--out", out], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            files["gen-" + codec] = open(out, "rb").read()
        out = os.path.join(tmp, "faults.avro")
        subprocess.run([gen, "--profile", "random", "--seed", "2", "--persons", "4", "--months",
                        "3", "--invalid-rate", "0.3", "--late-rate", "0.2", "--correction-rate",
                        "0.2", "--repeat-rate", "0.1", "--order", "person", "--out", out],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        files["gen-faults"] = open(out, "rb").read()
        # report: a rollup CSV of a small kib run
        kib = os.path.join(tmp, "kib.avro")
        subprocess.run([gen, "--profile", "kib", "--seed", "3", "--persons", "60", "--out", kib],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        csv, dlq = os.path.join(tmp, "kib.csv"), os.path.join(tmp, "kib.jsonl")
        subprocess.run([regstream, "run", "--input", kib, "--csv", csv, "--dead-letter", dlq,
                        "--quiet"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        lines = open(csv, "rb").read().splitlines(keepends=True)
    recs = [datum_for(0, s) for s in SAMPLES[:2]]
    files["two-blocks"] = ocf(READER, "null", [(1, recs[0]), (2, recs[1] + recs[0])])
    files["bad-sync"] = ocf(READER, "null", [(1, recs[0]), (1, recs[1])])
    files["bad-sync"] = files["bad-sync"].replace(recs[0] + SYNC, recs[0] + b"X" * 16, 1)
    files["trailing-bytes"] = ocf(READER, "null", [(1, recs[0] + b"\x00\x00")])
    files["unions"] = ocf(UNIONS, "null", [(2, datum_for(7, SAMPLES[0]) + datum_for(7, SAMPLES[1]))])
    files["added"] = ocf(ADDED, "null", [(1, datum_for(1, SAMPLES[1]))])
    files["header-only"] = ocf(READER, "null", [])
    for name, data in files.items():
        write("ocf", name, data)
        write("replay", name, bytes([0x01]) + data)  # 2 threads
    write("replay", "gen-faults-3t-window", bytes([0x06]) + files["gen-faults"])
    write("replay", "gen-null-twice", bytes([0x18]) + files["gen-null"])
    # report: the header, the rows of the measurement point, some others
    head, rows = lines[0], lines[1:]
    at = [r for r in rows if r.startswith(b"202302,")]
    other = [r for r in rows if not r.startswith(b"202302,")][:5]
    write("report", "kib-202302.csv", head + b"".join(at[:40] + other))
    write("report", "header-only.csv", head)
    write("report", "bad-row.csv", head + b"202302,101,JOBPARAT,1\n")
    # config: words separated by NUL
    argv = {
        "run-full": ["--input", "a.avro", "b.avro", "--csv", "o.csv", "--dead-letter", "d.jsonl",
                     "--threads", "2", "--project-start", "201901", "--project-end", "202212",
                     "--full-time-weekly-hours", "18.5", "--durable-window-months", "6",
                     "--durable-run-months", "3", "--quiet"],
        "run-eq": ["--input=a.avro", "--csv=o.csv", "--dead-letter=d.jsonl", "--threads=1"],
        "run-bad": ["--input", "a.avro", "--csv", "o.csv", "--threads", "0"],
        "report": ["--csv", "r.csv", "--at", "202302", "--check", "--tolerance", "2.5"],
        "report-eq": ["--csv=r.csv", "--at=201901", "--tolerance=0"],
    }
    for name, words in argv.items():
        write("config", name, "\0".join(words).encode())


if __name__ == "__main__":
    main()
