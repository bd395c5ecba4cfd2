#!/usr/bin/env python3
"""tests/deploy/compose_load.py — loads a compose file the way `docker compose
config` does, with no Docker engine and no Go, and prints the project as JSON
for tests/deploy/compose_check.py. Owns: YAML reading (duplicate keys are an
error), interpolation from the environment, validation against the Compose
Specification JSON schema, normalization of the short forms compose_check.py
reads (ports, depends_on, build, environment, command, durations) and the
consistency checks of compose's loader. Out of scope: regstream's own
promises about the file (compose_check.py), merging several files, .env files,
profiles, extends, include.

    compose_load.py --schema-wheel WHEEL.whl -f COMPOSE.yaml

WHEEL is check-jsonschema's wheel (it vendors the compose-spec schema,
builtin_schemas/vendor/compose-spec.json); tests/deploy/compose.sh downloads
the pinned version and checks its sha256 (WHEEL_SHA256 below) before this
reads it. Interpolation: $$ is a literal $; $VAR and ${VAR} (unset is an empty
string); ${VAR:-default}, ${VAR-default}; ${VAR:?error}, ${VAR?error};
${VAR:+alt}, ${VAR+alt}; defaults and errors may themselves hold ${...}.
Exits 1 with one "compose_load: ..." line per problem on stderr.
"""
import argparse
import hashlib
import json
import os
import re
import shlex
import sys
import zipfile

import jsonschema
import yaml

WHEEL_SHA256 = "14ce5c94871c551268ea948ffe21e9f1464dc48fb20bf9a4c13deeaaf756cf9b"  # check-jsonschema 0.39.0
SCHEMA_MEMBER = "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
SCHEMA_SHA_MEMBER = "check_jsonschema/builtin_schemas/vendor/sha256/compose-spec.sha256"


class LoadError(Exception):
    pass


# ---- YAML with duplicate keys rejected (compose's YAML reader refuses them)
class StrictLoader(yaml.SafeLoader):
    pass


def _mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise LoadError(f"line {key_node.start_mark.line + 1}: mapping key {key!r} already defined "
                            f"at line {seen[key] + 1}")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


# ---- interpolation
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _braced(s, i, env, path):
    """s[i] is just after '${'; returns (value, index after the closing '}')."""
    m = _NAME.match(s, i)
    if not m:
        raise LoadError(f"{path}: invalid interpolation format in {s!r}")
    name, j = m.group(0), m.end()
    if j < len(s) and s[j] == "}":
        return env.get(name, ""), j + 1
    op = None
    for cand in (":-", ":?", ":+", "-", "?", "+"):
        if s.startswith(cand, j):
            op = cand
            break
    if op is None:
        raise LoadError(f"{path}: invalid interpolation format in {s!r}")
    arg, k = _interpolate(s, j + len(op), env, path, stop_at_brace=True)
    if k >= len(s) or s[k] != "}":
        raise LoadError(f"{path}: invalid interpolation format in {s!r} (no closing brace)")
    value = env.get(name)
    empty = value is None or (op.startswith(":") and value == "")
    kind = op[-1]
    if kind == "-":
        return (arg if empty else value), k + 1
    if kind == "?":
        if empty:
            raise LoadError(f"required variable {name} is missing a value: {arg}")
        return value, k + 1
    return ("" if empty else arg), k + 1  # '+'


def _interpolate(s, i, env, path, stop_at_brace=False):
    out = []
    while i < len(s):
        c = s[i]
        if stop_at_brace and c == "}":
            break
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = s[i + 1] if i + 1 < len(s) else ""
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            v, i = _braced(s, i + 2, env, path)
            out.append(v)
        else:
            m = _NAME.match(s, i + 1)
            if not m:
                raise LoadError(f"{path}: invalid interpolation format in {s!r}")
            out.append(env.get(m.group(0), ""))
            i = m.end()
    return "".join(out), i


def interpolate(s, env, path="value"):
    v, _ = _interpolate(s, 0, env, path)
    return v


def interpolate_tree(node, env, path=""):
    """Every string value (not the keys) of the tree, interpolated."""
    if isinstance(node, dict):
        return {k: interpolate_tree(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(v, env, f"{path}[{n}]") for n, v in enumerate(node)]
    if isinstance(node, str):
        return interpolate(node, env, path)
    return node


# ---- schema
def load_schema(wheel):
    digest = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
    if digest != WHEEL_SHA256:
        raise LoadError(f"{wheel}: sha256 {digest}, not the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        raw = z.read(SCHEMA_MEMBER)
        want = z.read(SCHEMA_SHA_MEMBER).decode().split()[0]
    if hashlib.sha256(raw).hexdigest() != want:
        raise LoadError(f"{SCHEMA_MEMBER} does not match the wheel's own {SCHEMA_SHA_MEMBER}")
    return json.loads(raw)


def schema_errors(doc, schema):
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    errs = []
    for e in sorted(cls(schema).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in e.absolute_path) or "(top)"
        errs.append(f"schema: {where}: {e.message}")
    return errs


# ---- normalization
_DUR = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}


def duration_ns(text, where):
    """A Go duration ("90s", "1m30s", "500ms") in nanoseconds."""
    text = str(text)
    pos, total = 0, 0
    for m in _DUR.finditer(text):
        if m.start() != pos:
            break
        total += round(float(m.group(1)) * _UNIT_NS[m.group(2)])
        pos = m.end()
    if pos != len(text) or not text:
        raise LoadError(f"{where}: invalid duration {text!r}")
    return total


def go_duration(ns):
    """Go's time.Duration.String() for a whole number of milliseconds or more."""
    if ns == 0:
        return "0s"
    h, rest = divmod(ns, 3600 * 10**9)
    m, rest = divmod(rest, 60 * 10**9)
    s = rest / 10**9
    out = f"{h}h" if h else ""
    if h or m:
        out += f"{m}m"
    if h or m or rest:
        out += (f"{s:.9f}".rstrip("0").rstrip(".") if rest % 10**9 else str(rest // 10**9)) + "s"
    return out if out else "0s"


_PORT = re.compile(r"^(?:(?:(?P<ip>\[[^\]]+\]|[0-9.]+):)?(?P<pub>\d+(?:-\d+)?)?:)?(?P<target>\d+(?:-\d+)?)(?:/(?P<proto>tcp|udp|sctp))?$")


def port_long(p, where):
    if isinstance(p, dict):
        return dict(p)
    m = _PORT.match(str(p))
    if not m or "-" in m.group("target"):
        raise LoadError(f"{where}: invalid port {p!r}")
    out = {"mode": "ingress", "target": int(m.group("target")), "protocol": m.group("proto") or "tcp"}
    if m.group("pub"):
        out["published"] = m.group("pub")
    if m.group("ip"):
        out["host_ip"] = m.group("ip").strip("[]")
    return out


def list_or_dict(v):
    if isinstance(v, dict):
        return {k: (None if x is None else (str(x).lower() if isinstance(x, bool) else str(x))) for k, x in v.items()}
    out = {}
    for item in v or []:
        k, sep, x = str(item).partition("=")
        out[k] = x if sep else None
    return out


def normalize(doc, base):
    services = doc.get("services") or {}
    for name, svc in services.items():
        where = f"services.{name}"
        b = svc.get("build")
        if b is not None:
            b = {"context": b} if isinstance(b, str) else dict(b)
            ctx = b.get("context", ".")
            b["context"] = ctx if re.match(r"^[a-z]+://", ctx) else os.path.normpath(os.path.join(base, ctx))
            b.setdefault("dockerfile", "Dockerfile")
            svc["build"] = b
        if "environment" in svc:
            svc["environment"] = list_or_dict(svc["environment"])
        for key in ("command", "entrypoint"):
            if isinstance(svc.get(key), str):
                svc[key] = shlex.split(svc[key])
        if "ports" in svc:
            svc["ports"] = [port_long(p, f"{where}.ports[{n}]") for n, p in enumerate(svc["ports"])]
        d = svc.get("depends_on")
        if isinstance(d, list):
            svc["depends_on"] = {x: {"condition": "service_started", "required": True} for x in d}
        elif isinstance(d, dict):
            svc["depends_on"] = {k: {"condition": "service_started", "required": True, **(v or {})} for k, v in d.items()}
        if "stop_grace_period" in svc:
            svc["stop_grace_period"] = go_duration(duration_ns(svc["stop_grace_period"], f"{where}.stop_grace_period"))
        hc = svc.get("healthcheck") or {}
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if key in hc:
                hc[key] = go_duration(duration_ns(hc[key], f"{where}.healthcheck.{key}"))
    return doc


# ---- consistency (what compose's loader checks after the schema, and the paths)
def consistency_errors(doc):
    errs = []
    services = doc.get("services") or {}
    top = {k: set(doc.get(k) or {}) for k in ("volumes", "networks", "secrets", "configs")}
    names = {}
    for name, svc in services.items():
        where = f"services.{name}"
        if not svc.get("image") and not svc.get("build"):
            errs.append(f"{where}: neither an image nor a build context specified")
        for dep in svc.get("depends_on") or {}:
            if dep not in services:
                errs.append(f"{where}.depends_on: depends on undefined service {dep!r}")
            elif dep == name:
                errs.append(f"{where}.depends_on: depends on itself")
        for link in svc.get("links") or []:
            if str(link).split(":")[0] not in services:
                errs.append(f"{where}.links: undefined service {link!r}")
        for vf in svc.get("volumes_from") or []:
            s = str(vf).split(":")[0]
            if not s.startswith("container") and s not in services:
                errs.append(f"{where}.volumes_from: undefined service {s!r}")
        nm = svc.get("network_mode", "")
        if str(nm).startswith("service:") and nm[8:] not in services:
            errs.append(f"{where}.network_mode: undefined service {nm[8:]!r}")
        nets = svc.get("networks") or []
        for net in nets:
            if net != "default" and net not in top["networks"]:
                errs.append(f"{where}.networks: undefined network {net!r}")
        for n, v in enumerate(svc.get("volumes") or []):
            if isinstance(v, dict):
                src, kind = v.get("source"), v.get("type")
            else:
                src = str(v).split(":")[0] if ":" in str(v) else None
                kind = "bind" if src and (src.startswith((".", "/", "~", "$"))) else "volume"
            if kind == "volume" and src and src not in top["volumes"]:
                errs.append(f"{where}.volumes[{n}]: undefined volume {src!r}")
        for key in ("secrets", "configs"):
            for ref in svc.get(key) or []:
                ref = ref.get("source") if isinstance(ref, dict) else ref
                if ref not in top[key]:
                    errs.append(f"{where}.{key}: undefined {key[:-1]} {ref!r}")
        cn = svc.get("container_name")
        if cn:
            if cn in names:
                errs.append(f"{where}.container_name: {cn!r} is also {names[cn]}'s")
            names[cn] = name
        b = svc.get("build")
        if b and not re.match(r"^[a-z]+://", b["context"]):
            if not os.path.isdir(b["context"]):
                errs.append(f"{where}.build.context: {b['context']} is not a directory")
            elif "dockerfile_inline" not in b:
                df = os.path.join(b["context"], b["dockerfile"])
                if not os.path.isfile(df):
                    errs.append(f"{where}.build.dockerfile: {df} does not exist")
    # depends_on cycles
    state = {}

    def visit(n, trail):
        state[n] = 1
        for dep in (services[n].get("depends_on") or {}):
            if dep not in services or dep == n:
                continue
            if state.get(dep) == 1:
                errs.append("depends_on cycle: " + " -> ".join(trail + [n, dep]))
            elif not state.get(dep):
                visit(dep, trail + [n])
        state[n] = 2

    for n in services:
        if not state.get(n):
            visit(n, [])
    return errs


def load(path, wheel, env):
    path = os.path.realpath(path)
    try:
        raw = yaml.load(open(path), Loader=StrictLoader)
    except yaml.YAMLError as e:
        raise LoadError(f"{path}: {e}")
    if not isinstance(raw, dict):
        raise LoadError(f"{path}: the top level is not a mapping")
    doc = interpolate_tree(raw, env)
    errs = schema_errors(doc, load_schema(wheel))
    if errs:
        raise LoadError("\n".join(errs))
    doc = normalize(doc, os.path.dirname(path))
    errs = consistency_errors(doc)
    if errs:
        raise LoadError("\n".join(errs))
    doc.setdefault("name", os.path.basename(os.path.dirname(path)).lower())
    return doc


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schema-wheel", required=True)
    ap.add_argument("-f", dest="file", required=True)
    a = ap.parse_args()
    try:
        project = load(a.file, a.schema_wheel, dict(os.environ))
    except LoadError as e:
        for line in str(e).splitlines():
            print(f"compose_load: {line}", file=sys.stderr)
        sys.exit(1)
    json.dump(project, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
