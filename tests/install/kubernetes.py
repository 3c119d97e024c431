#!/usr/bin/env python3
"""The Kubernetes manifests (deploy/kubernetes), checked offline.

Run by tests/install/kubernetes.sh, which installs the tools. Steps:

1. `kubectl kustomize deploy/kubernetes` renders.
2. Every object validates against the Kubernetes OpenAPI schemas (the
   `kubernetes-validate` package, strict: unknown fields are errors), for
   the oldest Kubernetes the manifests support and the newest the package
   knows. The ServiceMonitor is a CRD with no schema there: its references
   (the Service it selects, the port it names) are checked instead.
3. The objects fit together: selectors match the pods, ports and
   ConfigMaps named exist, the init container's REPLICAS and PEERS_SERVICE
   are the StatefulSet's, the copies of the example (profiles, dashboard)
   are the example's, and the overlay kustomization.yaml's header shows
   (your own zone and profiles) renders and replaces them.
4. For each pod, the init container's own script runs in a chroot holding
   what the container sees (a static busybox for the image, the ConfigMap
   as the kubelet lays it out, the pod's environment from the downward API),
   and the switchyard.toml it writes, with the profiles volume and the
   GeoIP database the image ships (under /etc/switchyard/geoip), passes `switchyard check` with the
   secrets in the environment as the pod gets them; its [cluster] names
   the pod and seeds the other two pods by their stable DNS names.

Usage: kubernetes.py --bin target/debug/switchyard [--busybox /bin/busybox]
       kubernetes.py --write-dashboard   (after changing examples/grafana)
"""

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEPLOY = os.path.join(ROOT, "deploy", "kubernetes")
DASHBOARD = os.path.join(ROOT, "examples", "grafana", "switchyard.json")
DASHBOARD_YAML = os.path.join(DEPLOY, "grafana-dashboard.yaml")
# The bundled example as the tests read it: the copy scripts/example-fixture.sh
# keeps (switchyard.toml and profiles/ at the root are the user's to edit).
EXAMPLE = os.path.join(ROOT, "tests", "fixtures", "example")
# MixedProtocolLBService (UDP and TCP in one LoadBalancer) is GA in 1.26.
OLDEST_K8S = "1.26.0"
NAMESPACE = "dns-test"
# Stand-ins for the cluster's choices, as the kubelet would fill them in.
POD_IPS = ["10.244.1.17", "10.244.2.23", "fd00:10:244:3::1f"]

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)
    return ok


def write_dashboard():
    """Rewrites grafana-dashboard.yaml around examples/grafana/switchyard.json."""
    text = open(DEPLOY + "/grafana-dashboard.yaml").read()
    head = text[: text.index("  switchyard.json: |\n") + len("  switchyard.json: |\n")]
    body = open(DASHBOARD).read()
    indented = "".join("    " + l if l.strip() else l for l in body.splitlines(True))
    open(DASHBOARD_YAML, "w").write(head + indented)


def render(kubectl):
    out = subprocess.run(
        [kubectl, "kustomize", DEPLOY], check=True, capture_output=True, text=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def documented_secret(kubectl, work):
    """The Secret as README.md ("Kubernetes") has you create it, with fresh
    keys made the way it says."""
    d = os.path.join(work, "secret")
    os.makedirs(d)
    for f in ("cluster.key", "admin.token"):
        with open(os.path.join(d, f), "w") as fh:
            fh.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    flags = [
        "--from-file=cluster-key=cluster.key",
        "--from-file=admin-token=admin.token",
        "--from-file=todoapi-health-key=profiles/keys/todoapi.key",
    ]
    doc = open(os.path.join(ROOT, "README.md")).read()
    for flag in flags:
        check(flag in doc, f"README.md (Kubernetes) creates the Secret with {flag}")
    shutil.copytree(os.path.join(EXAMPLE, "profiles", "keys"), os.path.join(d, "profiles", "keys"))
    cmd = [kubectl, "create", "secret", "generic", "switchyard", *flags, "--dry-run=client", "-o", "yaml"]
    out = subprocess.run(cmd, cwd=d, check=True, capture_output=True, text=True).stdout
    return yaml.safe_load(out)


def validate(objs):
    from kubernetes_validate import utils

    newest = utils.latest_version()
    for version in (OLDEST_K8S, newest):
        for o in objs:
            name = f"{o['kind']}/{o['metadata']['name']}"
            try:
                utils.validate(o, version, strict=True)
                check(True, f"{name} is valid for Kubernetes {version} (strict)")
            except utils.SchemaNotFoundError:
                print(f"skip {name}: no schema for {o['apiVersion']} {o['kind']} in "
                      f"kubernetes-validate (a CRD); its references are checked below")
            except utils.ValidationError as e:
                check(False, f"{name} for Kubernetes {version}: {e.message} at "
                             f"{'.'.join(str(p) for p in e.path)}")


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def one(objs, kind, name=None):
    found = [o for o in by_kind(objs, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def kubelet_volume(target, files, mode):
    """Lays out a ConfigMap, Secret or projected volume as the kubelet's
    atomic writer does: the files in a timestamped directory, `..data`
    pointing to it, and each top-level entry a symlink through `..data`."""
    ts = "..2026_12_07_12_00_00.000000001"
    os.makedirs(os.path.join(target, ts))
    for path, content in files.items():
        full = os.path.join(target, ts, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as fh:
            fh.write(content)
        os.chmod(full, mode)
    os.symlink(ts, os.path.join(target, "..data"))
    for top in sorted({p.split("/")[0] for p in files}):
        os.symlink(os.path.join("..data", top), os.path.join(target, top))


def volume_files(vol, objs, secret):
    """The files a volume of the pod holds, by path: configMap and secret
    volumes, and projected volumes of them."""
    def source(kind, src):
        if kind == "configMap":
            data = {k: v.encode() for k, v in one(objs, "ConfigMap", src["name"])["data"].items()}
        else:
            assert src["name"] == secret["metadata"]["name"], f"unknown Secret {src['name']}"
            data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        if "items" in src:
            return {i["path"]: data[i["key"]] for i in src["items"]}
        return data

    if "configMap" in vol:
        return source("configMap", vol["configMap"]), vol["configMap"].get("defaultMode", 0o644)
    if "secret" in vol:
        return source("secret", vol["secret"]), vol["secret"].get("defaultMode", 0o644)
    files = {}
    for s in vol["projected"]["sources"]:
        (kind, src), = s.items()
        files.update(source(kind, src))
    return files, vol["projected"].get("defaultMode", 0o644)


def pod_env(container, pod, secret):
    """The container's environment as the kubelet sets it: values, the
    downward API's fields and the Secret's keys."""
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e["valueFrom"]
        if "fieldRef" in ref:
            env[e["name"]] = pod[ref["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in ref:
            r = ref["secretKeyRef"]
            assert r["name"] == secret["metadata"]["name"], f"unknown Secret {r['name']}"
            env[e["name"]] = base64.b64decode(secret["data"][r["key"]]).decode()
        else:
            raise AssertionError(f"env {e['name']}: unsupported source {ref}")
    return env


def consistency(objs, secret):
    sts = one(objs, "StatefulSet")
    spec = sts["spec"]
    tmpl = spec["template"]
    labels = tmpl["metadata"]["labels"]
    check(matches(spec["selector"]["matchLabels"], labels), "the StatefulSet's selector matches its pods")
    check(spec["replicas"] == 3, "3 replicas")
    server = next(c for c in tmpl["spec"]["containers"] if c["name"] == "switchyard")
    init = next(c for c in tmpl["spec"]["initContainers"] if c["name"] == "config")
    ports = {p["name"]: p for p in server["ports"]}

    peers = one(objs, "Service", spec["serviceName"])
    check(peers["spec"].get("clusterIP") == "None", f"Service {spec['serviceName']} (serviceName) is headless")
    check(peers["spec"].get("publishNotReadyAddresses") is True,
          f"Service {spec['serviceName']} publishes pods before they are ready (peers warm-start from each other)")
    for svc in by_kind(objs, "Service"):
        n = svc["metadata"]["name"]
        check(matches(svc["spec"]["selector"], labels), f"Service {n} selects the pods")
        for p in svc["spec"]["ports"]:
            cp = ports.get(p["targetPort"])
            check(cp is not None and cp["protocol"] == p["protocol"],
                  f"Service {n} port {p['name']} goes to the container's {p['targetPort']}/{p['protocol']}")
    dns = one(objs, "Service", "switchyard-dns")
    check(dns["spec"]["type"] == "LoadBalancer" and {(p["port"], p["protocol"]) for p in dns["spec"]["ports"]}
          == {(53, "UDP"), (53, "TCP")}, "the DNS Service is a LoadBalancer on 53/UDP and 53/TCP")
    check(dns["spec"].get("externalTrafficPolicy") == "Local", "the DNS Service keeps client addresses (Local)")
    pdb = one(objs, "PodDisruptionBudget")
    check(matches(pdb["spec"]["selector"]["matchLabels"], labels), "the PodDisruptionBudget covers the pods")

    sm = one(objs, "ServiceMonitor")
    selected = [s for s in by_kind(objs, "Service") if matches(sm["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])]
    check([s["metadata"]["name"] for s in selected] == [spec["serviceName"]],
          "the ServiceMonitor selects the headless Service only (each pod scraped once)")
    for ep in sm["spec"]["endpoints"]:
        check(ep["port"] in {p["name"] for p in peers["spec"]["ports"]} and ep.get("path") == "/metrics",
              f"the ServiceMonitor scrapes port {ep['port']} /metrics")

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        g = server[probe]["httpGet"]
        check(g["path"] == "/healthz" and g["port"] == "admin", f"{probe} is GET /healthz on the admin port")
    for c in [server, init]:
        sc = c["securityContext"]
        check(sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
              and sc["capabilities"]["drop"] == ["ALL"] and "add" not in sc["capabilities"],
              f"container {c['name']}: read-only root, no privilege escalation, no capabilities")
    psc = tmpl["spec"]["securityContext"]
    check(psc.get("runAsNonRoot") is True and psc.get("runAsUser", 0) != 0, "the pod runs as a non-root user")
    res = server["resources"]
    check(all(k in res.get("requests", {}) for k in ("cpu", "memory")) and "memory" in res.get("limits", {}),
          "the server has CPU and memory requests and a memory limit")
    anti = tmpl["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    check(any(t["topologyKey"] == "kubernetes.io/hostname" and matches(t["labelSelector"]["matchLabels"], labels)
              for t in anti), "never two pods on one node")
    check(any(t["topologyKey"] == "topology.kubernetes.io/zone" for t in tmpl["spec"]["topologySpreadConstraints"]),
          "pods spread across zones")

    ienv = {e["name"]: e.get("value") for e in init["env"]}
    check(ienv.get("REPLICAS") == str(spec["replicas"]), "the init container's REPLICAS is spec.replicas")
    check(ienv.get("PEERS_SERVICE") == spec["serviceName"], "the init container's PEERS_SERVICE is spec.serviceName")

    for vol in tmpl["spec"]["volumes"]:
        srcs = [vol] if "configMap" in vol or "secret" in vol else [
            s for s in vol.get("projected", {}).get("sources", [])]
        for s in srcs:
            if "configMap" in s:
                n = s["configMap"]["name"]
                check(len([c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"] == n]) == 1,
                      f"volume {vol['name']}: ConfigMap {n} is rendered")
            if "secret" in s:
                for i in s["secret"].get("items", []):
                    check(i["key"] in secret["data"], f"volume {vol['name']}: the Secret has {i['key']}")
    for e in server["env"]:
        r = e.get("valueFrom", {}).get("secretKeyRef")
        if r:
            check(r["key"] in secret["data"], f"env {e['name']}: the Secret has {r['key']}")

    # The copies of the example are the example.
    prof = next(c for c in by_kind(objs, "ConfigMap") if c["metadata"]["name"].startswith("switchyard-profiles"))
    example = {f: open(os.path.join(EXAMPLE, "profiles", f)).read()
               for f in os.listdir(os.path.join(EXAMPLE, "profiles")) if f.endswith(".toml")}
    check(prof["data"] == example, "the profiles ConfigMap is the example's profiles/*.toml, every file as it is "
          "(after a change: cp tests/fixtures/example/profiles/*.toml deploy/kubernetes/profiles/ "
          "and list new ones in kustomization.yaml)")
    dash = one(objs, "ConfigMap", "switchyard-grafana-dashboard")
    check(dash["metadata"]["labels"].get("grafana_dashboard") == "1", "the dashboard ConfigMap has the sidecar's label")
    check(dash["data"]["switchyard.json"] == open(DASHBOARD).read(),
          "the dashboard ConfigMap is examples/grafana/switchyard.json (after a change: kubernetes.py --write-dashboard)")
    json.loads(dash["data"]["switchyard.json"])
    return sts


def documented_overlay(kubectl, work):
    """Renders the overlay kustomization.yaml's header shows (your own zone
    and profiles), placed where it says: its profiles replace the example's
    and the StatefulSet mounts them. Directories in `resources` need
    kustomize v3 or later: with Debian's kubectl 1.20 (v2.0.3) it is
    skipped, with the reason."""
    text = open(os.path.join(DEPLOY, "kustomization.yaml")).read()
    lines = text.splitlines()
    start = lines.index("#   # my-dns/kustomization.yaml") + 1
    overlay = []
    for line in lines[start:]:
        if line.strip() == "#":
            break
        overlay.append(line[len("#   "):])
    top = os.path.join(work, "clone")
    os.makedirs(os.path.join(top, "my-dns", "profiles"))
    os.symlink(os.path.join(ROOT, "deploy"), os.path.join(top, "deploy"))
    with open(os.path.join(top, "my-dns", "kustomization.yaml"), "w") as fh:
        fh.write("\n".join(overlay) + "\n")
    shutil.copy(os.path.join(DEPLOY, "switchyard.toml"), os.path.join(top, "my-dns"))
    api = open(os.path.join(EXAMPLE, "profiles", "pool.toml")).read().replace("pool.tm.example.test.", "api.tm.example.test.")
    with open(os.path.join(top, "my-dns", "profiles", "api.toml"), "w") as fh:
        fh.write(api)
    r = subprocess.run([kubectl, "kustomize", os.path.join(top, "my-dns")], capture_output=True, text=True)
    if r.returncode != 0 and "must be a file" in r.stderr:
        print(f"skip the overlay in kustomization.yaml's header: this kubectl's kustomize takes no directory "
              f"in `resources` ({r.stderr.strip()[:120]})")
        return
    check(r.returncode == 0, f"the overlay in kustomization.yaml's header renders {r.stderr.strip()}")
    objs = [d for d in yaml.safe_load_all(r.stdout) if d]
    prof = [o for o in by_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("switchyard-profiles")]
    sts = one(objs, "StatefulSet")
    mounted = [s["configMap"]["name"] for v in sts["spec"]["template"]["spec"]["volumes"]
               for s in v.get("projected", {}).get("sources", []) if "configMap" in s]
    check(len(prof) == 1 and list(prof[0]["data"]) == ["api.toml"] and mounted == [prof[0]["metadata"]["name"]],
          "the overlay's profiles replace the example's, and the pods mount them")
    check(all(o["metadata"].get("namespace") == "dns" for o in objs), "the overlay puts everything in its namespace")


def run_pod(objs, sts, secret, ordinal, pod_ip, binary, busybox, work):
    """Renders pod `ordinal`'s configuration with the init container's own
    command, then checks it with `switchyard check`. Returns the config."""
    spec = sts["spec"]
    tmpl = spec["template"]["spec"]
    name = f"{sts['metadata']['name']}-{ordinal}"
    pod = {"metadata.name": name, "metadata.namespace": NAMESPACE, "status.podIP": pod_ip}
    vols = {v["name"]: v for v in tmpl["volumes"]}
    init = next(c for c in tmpl["initContainers"] if c["name"] == "config")
    server = next(c for c in tmpl["containers"] if c["name"] == "switchyard")

    # The init container: busybox's file system with its volumes mounted.
    croot = os.path.join(work, name, "init")
    os.makedirs(os.path.join(croot, "bin"))
    shutil.copy(busybox, os.path.join(croot, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(croot, "bin", a))
    for m in init["volumeMounts"]:
        target = croot + m["mountPath"]
        vol = vols[m["name"]]
        if "emptyDir" in vol:
            os.makedirs(target)
        else:
            files, mode = volume_files(vol, objs, secret)
            kubelet_volume(target, files, mode)
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME": name,
           **pod_env(init, pod, secret)}
    r = subprocess.run(["chroot", croot] + init["command"] + init.get("args", []),
                       env=env, capture_output=True, text=True, timeout=30)
    check(r.returncode == 0, f"{name}: the init container's script exits 0 ({r.stdout.strip()}{r.stderr.strip()})")
    rendered_dir = croot + next(m["mountPath"] for m in init["volumeMounts"] if m["name"] == "rendered")

    # The server's view of /etc/switchyard: the image's (its GeoIP
    # database) under the mounts.
    etc = os.path.join(work, name, "server", "etc", "switchyard")
    os.makedirs(etc)
    os.symlink(os.path.realpath(os.path.join(EXAMPLE, "geoip")), os.path.join(etc, "geoip"))
    for m in server["volumeMounts"]:
        if not m["mountPath"].startswith("/etc/switchyard"):
            continue
        target = os.path.join(work, name, "server") + m["mountPath"]
        vol = vols[m["name"]]
        if "subPath" in m:
            assert m["name"] == "rendered"
            shutil.copy(os.path.join(rendered_dir, m["subPath"]), target)
        else:
            files, mode = volume_files(vol, objs, secret)
            kubelet_volume(target, files, mode)
    config = os.path.join(etc, "switchyard.toml")
    text = open(config).read()
    left = re.findall(r"@[A-Z_]+@", text)
    check(not left, f"{name}: no placeholder is left in switchyard.toml {left or ''}")
    cfg = tomllib.loads(text)

    # Absolute paths in the configuration must be mounts of the container.
    mounts = [m["mountPath"] for m in server["volumeMounts"]]
    check(any(cfg["state_file"].startswith(p + "/") for p in mounts),
          f"{name}: state_file ({cfg['state_file']}) is on a volume")

    senv = pod_env(server, pod, secret)
    env = {"PATH": os.environ["PATH"], **senv}
    env["SWITCHYARD_CONFIG"] = config
    r = subprocess.run([binary, "check", "-c", config], env=env, capture_output=True, text=True, timeout=120)
    out = (r.stdout + r.stderr).strip()
    check(r.returncode == 0 and out.endswith(")") and ": ok (" in out and "warning" not in out,
          f"{name}: switchyard check passes, without a warning: {out}")
    # The secrets do come from the environment: without the cluster key, check fails naming it.
    env.pop("SWITCHYARD_CLUSTER_KEY")
    r = subprocess.run([binary, "check", "-c", config], env=env, capture_output=True, text=True, timeout=120)
    check(r.returncode != 0 and "cluster.key" in r.stdout + r.stderr,
          f"{name}: without SWITCHYARD_CLUSTER_KEY check fails naming cluster.key")

    # The same zones and files as the bundled example: only where it
    # listens, keeps state, finds its secrets and its peers differ.
    ex = tomllib.load(open(os.path.join(EXAMPLE, "switchyard.toml"), "rb"))
    check(cfg["zones"] == ex["zones"] and cfg["profiles"] == ex["profiles"] and cfg["geoip"] == ex["geoip"],
          f"{name}: zones, profiles and GeoIP database are the bundled example's")
    cl = cfg["cluster"]
    host = pod_ip if ":" not in pod_ip else f"[{pod_ip}]"
    domain = next(e["value"] for e in init["env"] if e["name"] == "CLUSTER_DOMAIN")
    others = [f"{sts['metadata']['name']}-{j}.{spec['serviceName']}.{NAMESPACE}.svc.{domain}:7946"
              for j in range(spec["replicas"]) if j != ordinal]
    check(cl["node"] == name and cfg["dns"]["nsid"] == name, f"{name}: node and nsid are the pod's name")
    check(cl["listen"] == f"{host}:7946", f"{name}: gossip listens on the pod's address ({cl['listen']})")
    check(sorted(cl["seeds"]) == sorted(others), f"{name}: seeds are the other two pods: {cl['seeds']}")
    check(not any(s.startswith(name + ".") for s in cl["seeds"]), f"{name}: not itself")
    return cfg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--kubectl", default="kubectl")
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--work", help="an empty directory for the pods' file systems (default: a new one, removed after)")
    ap.add_argument("--write-dashboard", action="store_true")
    a = ap.parse_args()
    if a.write_dashboard:
        write_dashboard()
        return 0
    work = a.work or tempfile.mkdtemp(prefix="switchyard-k8s.")
    try:
        objs = render(a.kubectl)
        check(True, f"kubectl kustomize deploy/kubernetes renders {len(objs)} objects: "
              + ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in objs))
        secret = documented_secret(a.kubectl, work)
        validate(objs + [secret])
        sts = consistency(objs, secret)
        documented_overlay(a.kubectl, work)
        for i in range(sts["spec"]["replicas"]):
            run_pod(objs, sts, secret, i, POD_IPS[i], a.bin, a.busybox, work)
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"\n{len(failures)} check(s) failed:", *failures, sep="\n  ")
        return 1
    print("\nkubernetes: every check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
