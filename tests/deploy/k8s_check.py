#!/usr/bin/env python3
"""tests/deploy/k8s_check.py — validates deploy/kubernetes/*.yaml offline.

    k8s_check.py DIR      (needs the `kubernetes` and `pyyaml` packages)

1. Every document is deserialized into its model of the official Kubernetes
   Python client (V1StatefulSet, V1Service, V1Secret, V1PodDisruptionBudget)
   with ApiClient().deserialize (as if the API server had answered with it),
   which also enforces required fields. That
   deserializer ignores keys it does not know, so each document is also walked
   against the models' attribute_map/openapi_types: an unknown or misspelt
   field anywhere, or a value of the wrong JSON type, is an error.
2. regstream's own promises: the StatefulSet runs Kafka mode with
   --snapshot-topic (no --snapshot-dir, no volume claim), --metrics-listen
   0.0.0.0:9464, --log-format json and --config in the mounted Secret (a key
   the Secret has); liveness on /healthz and readiness on /readyz at 9464;
   the prometheus.io annotations; requests and limits for CPU and memory
   (requests <= limits); non-root uid 10001 (the image's), read-only root,
   no privilege escalation, all capabilities dropped; 90 s grace; a headless
   Service and a PodDisruptionBudget that select the pods; placeholders in the
   example Secret marked CHANGE-ME.
Prints one line per check and "k8s: N passed, M failed"; exits 1 on a failure.
"""

import glob
import json
import os
import re
import sys

import kubernetes.client
import yaml
from kubernetes.client import ApiClient

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import check, finish  # noqa: E402

MODELS = {
    ("v1", "Service"): "V1Service",
    ("v1", "Secret"): "V1Secret",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
}
PRIMITIVE = {"str": str, "bytes": str, "int": int, "bool": bool, "float": (int, float)}



def strict(value, typ, path, errors):
    """Walks value against the client's type string typ; appends errors."""
    if value is None:
        return
    m = re.fullmatch(r"Optional\[(.*)\]", typ)
    if m:
        typ = m.group(1)
    m = re.fullmatch(r"(?:List|list)\[(.*)\]", typ)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, v in enumerate(value):
            strict(v, m.group(1), f"{path}[{i}]", errors)
        return
    m = re.fullmatch(r"(?:Dict\[|dict\()([^,]*), (.*)[\])]", typ)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping")
            return
        for k, v in value.items():
            strict(v, m.group(2), f"{path}.{k}", errors)
        return
    if typ in PRIMITIVE:
        if not isinstance(value, PRIMITIVE[typ]) or (typ != "bool" and isinstance(value, bool)):
            errors.append(f"{path}: expected {typ}, got {type(value).__name__} {value!r}")
    elif typ in ("object", "datetime", "date"):
        pass  # IntOrString, Quantity, raw objects
    else:
        cls = getattr(kubernetes.client, typ, None)
        if cls is None:
            errors.append(f"{path}: the client has no model {typ}")
            return
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a {typ} mapping")
            return
        json_to_attr = {j: a for a, j in cls.attribute_map.items()}
        for k, v in value.items():
            if k not in json_to_attr:
                errors.append(f"{path}.{k}: no such field in {typ}")
                continue
            strict(v, cls.openapi_types[json_to_attr[k]], f"{path}.{k}", errors)


QUANTITY = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(q):
    m = re.fullmatch(r"([0-9.]+)(m|k|M|G|Ki|Mi|Gi)?", str(q))
    if not m:
        raise ValueError(f"not a quantity: {q!r}")
    return float(m.group(1)) * QUANTITY[m.group(2) or ""]


def main():
    d = sys.argv[1]
    docs = []
    for path in sorted(glob.glob(os.path.join(d, "*.yaml"))):
        with open(path) as f:
            text = f.read()
        if not check(text.startswith("# deploy/kubernetes/"), f"{path} opens with its usage comment"):
            pass
        for doc in yaml.safe_load_all(text):
            if doc is not None:
                docs.append((os.path.basename(path), doc))
    check(len(docs) >= 4, f"{len(docs)} documents in {d}")

    api = ApiClient()
    objs = {}
    for name, doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        model = MODELS.get(key)
        if not check(model is not None, f"{name}: {key[1]} ({key[0]}) is a known kind"):
            continue
        errors = []
        strict(doc, model, key[1], errors)
        check(not errors, f"{name}: {key[1]} has only fields of {model}" +
              ("" if not errors else ": " + "; ".join(errors)))
        try:
            obj = api.deserialize(json.dumps(doc), model, "application/json")
            ok = type(obj).__name__ == model
            err = ""
        except Exception as e:  # the client's ValueError for a missing required field
            ok, err = False, f": {e}"
        check(ok, f"{name}: {key[1]} deserializes into {model}{err}")
        objs.setdefault(key[1], []).append(doc)

    sts = (objs.get("StatefulSet") or [None])[0]
    if not check(sts is not None, "there is a StatefulSet"):
        return
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels", {})
    check(spec.get("replicas") == 3, f"replicas: 3 (is {spec.get('replicas')})")
    sel = spec["selector"].get("matchLabels", {})
    check(sel and all(labels.get(k) == v for k, v in sel.items()),
          "the StatefulSet's selector matches its pod labels")
    c = pod["containers"][0]
    args = c.get("args", [])

    def arg(opt):
        return args[args.index(opt) + 1] if opt in args and args.index(opt) + 1 < len(args) else None

    check(args[:1] == ["run"] and arg("--brokers"), "the container runs `regstream run --brokers ...` (Kafka mode)")
    check(bool(arg("--snapshot-topic")) and "--snapshot-dir" not in args,
          f"--snapshot-topic {arg('--snapshot-topic')}, no --snapshot-dir")
    check(not spec.get("volumeClaimTemplates") and not any("persistentVolumeClaim" in v for v in pod.get("volumes", [])),
          "no volume claim (no shared disk)")
    check(arg("--metrics-listen") == "0.0.0.0:9464", f"--metrics-listen 0.0.0.0:9464 (is {arg('--metrics-listen')})")
    check(arg("--log-format") == "json", "--log-format json")
    for opt in ("--topic", "--group", "--output-topic", "--dead-letter-topic"):
        check(bool(arg(opt)), f"{opt} {arg(opt)}")

    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}

    def probe_port(p):
        port = p["httpGet"]["port"]
        return ports.get(port) if isinstance(port, str) else port

    lp, rp = c.get("livenessProbe", {}), c.get("readinessProbe", {})
    check(lp.get("httpGet", {}).get("path") == "/healthz" and probe_port(lp) == 9464,
          "livenessProbe: GET /healthz on 9464")
    check(rp.get("httpGet", {}).get("path") == "/readyz" and probe_port(rp) == 9464,
          "readinessProbe: GET /readyz on 9464")
    ann = spec["template"]["metadata"].get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9464"
          and ann.get("prometheus.io/path") == "/metrics",
          "prometheus.io/scrape, port 9464 and path /metrics annotations on the pods")

    # --config points into the mounted Secret, at a key the Secret has.
    cfg = arg("--config") or ""
    mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts", [])}
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    m = mounts.get(os.path.dirname(cfg))
    vol = vols.get(m["name"]) if m else None
    secret_name = (vol or {}).get("secret", {}).get("secretName")
    secrets = {s["metadata"]["name"]: s for s in objs.get("Secret", [])}
    sec = secrets.get(secret_name)
    keys = set((sec or {}).get("stringData", {})) | set((sec or {}).get("data", {}))
    check(bool(m) and m.get("readOnly") is True and sec is not None and os.path.basename(cfg) in keys,
          f"--config {cfg} is key {os.path.basename(cfg)} of Secret {secret_name}, mounted read-only")
    check(vol is not None and vol["secret"].get("defaultMode") == 0o440,
          "the Secret's files are 0440 (owner and the pod's fsGroup)")
    if sec:
        props = sec.get("stringData", {}).get("regstream.properties", "")
        ca = [ln.split("=", 1)[1] for ln in props.splitlines() if ln.startswith("ssl.ca.location=")]
        check(all(os.path.dirname(p) == os.path.dirname(cfg) and os.path.basename(p) in keys for p in ca),
              "ssl.ca.location names a file of the same mounted Secret")
        vals = [ln.split("=", 1)[1] for ln in props.splitlines() if "=" in ln and
                re.search(r"password|user|url|user\.info", ln.split("=", 1)[0])]
        check(vals and all("CHANGE-ME" in v for v in vals),
              "the example Secret's user names, passwords and urls are CHANGE-ME placeholders")

    res = c.get("resources", {})
    req, lim = res.get("requests", {}), res.get("limits", {})
    ok = all(k in req and k in lim for k in ("cpu", "memory"))
    check(ok and all(quantity(req[k]) <= quantity(lim[k]) for k in ("cpu", "memory")),
          f"requests {req} <= limits {lim}, cpu and memory")
    check(ok and quantity(lim["memory"]) >= 600 * 2**20,
          "the memory limit is above the benchmarks' highest peak (582 MiB)")

    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser") == 10001,
          "the pod runs as non-root uid 10001 (the image's user)")
    check(csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
          and csc.get("capabilities", {}).get("drop") == ["ALL"],
          "the container: read-only root, no privilege escalation, capabilities drop ALL")
    check(pod.get("terminationGracePeriodSeconds") == 90, "terminationGracePeriodSeconds: 90")

    svc = [s for s in objs.get("Service", []) if s["metadata"]["name"] == spec.get("serviceName")]
    check(svc and svc[0]["spec"].get("clusterIP") == "None"
          and all(labels.get(k) == v for k, v in svc[0]["spec"].get("selector", {}).items()),
          f"Service {spec.get('serviceName')} is headless and selects the pods")
    pdb = objs.get("PodDisruptionBudget", [])
    check(pdb and all(labels.get(k) == v for k, v in pdb[0]["spec"]["selector"].get("matchLabels", {}).items()),
          "a PodDisruptionBudget selects the pods")


if __name__ == "__main__":
    main()
    finish("k8s")
