#!/usr/bin/env python3
"""The cluster under faults, measured with real processes on loopback
(release build, default gossip interval unless CLUSTER_EXTRA says
otherwise). Issue 20 items 3 and 4.

  benches/cluster_faults.py detect     # SIGSTOP one node: time until each
                                       # other node declares it dead
  benches/cluster_faults.py load       # both cores saturated by CPU hogs
                                       # for DURATION s: false deaths
  benches/cluster_faults.py restarts   # gossip per node, fresh and after
                                       # RESTARTS restarts of one node, and
                                       # how long it takes to come back

Environment: NODES (5), ENDPOINTS per node (200), TRIALS (detect: 10),
DURATION (load: 120), RESTARTS (20), WARMUP (restarts: 30 s before the
fresh figure), MAX_WAIT (restarts: 600 s), CLUSTER_EXTRA (lines added to every
node's [cluster], e.g. 'dead_after = "2s"'), SWITCHYARD_BIN (default
target/release/switchyard, built first).
"""

import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODES = int(os.environ.get("NODES", "5"))
ENDPOINTS = int(os.environ.get("ENDPOINTS", "200"))
EXTRA = os.environ.get("CLUSTER_EXTRA", "").replace("\\n", "\n")


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def build():
    if "SWITCHYARD_BIN" in os.environ:
        return os.environ["SWITCHYARD_BIN"]
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--example", "health_backend"],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    return os.path.join(ROOT, "target/release/switchyard")


def get(admin, path):
    with urllib.request.urlopen(f"http://{admin}{path}", timeout=5) as r:
        return r.read().decode()


def metric(admin, prefix):
    text = get(admin, "/metrics")
    return sum(
        float(l.split()[-1]) for l in text.splitlines() if l.startswith(prefix)
    )


def states(admin):
    doc = json.loads(get(admin, "/api/v1/status"))
    return {n["name"]: n for n in doc.get("cluster", {}).get("nodes", [])}


class Node:
    def __init__(self, bin, work, i, gossip, backend):
        self.bin, self.i = bin, i
        self.dir = os.path.join(work, f"n{i}")
        os.makedirs(self.dir, exist_ok=True)
        self.admin = f"127.0.0.1:{free_port(socket.SOCK_STREAM)}"
        self.gossip = gossip
        seeds = ", ".join(
            f'"127.0.0.1:{p}"' for j, p in enumerate(gossip, 1) if j != i
        )
        profile = os.path.join(self.dir, "profiles")
        os.makedirs(profile, exist_ok=True)
        per = 10
        for p in range((ENDPOINTS + per - 1) // per):
            with open(os.path.join(profile, f"p{p}.toml"), "w") as f:
                f.write(
                    f'name = "p{p}.bench.test."\nrouting = "priority"\n[monitor]\n'
                    f'protocol = "http"\nport = {backend}\ninterval = "10s"\ntimeout = "2s"\n'
                )
                for e in range(per):
                    n = p * per + e
                    if n >= ENDPOINTS:
                        break
                    f.write(
                        f'[[endpoints]]\nname = "e{e}"\ntarget = "192.0.2.{n % 250 + 1}"\n'
                        f'probe = {{ address = "127.0.0.1", path = "/h/{n}" }}\n'
                    )
        shutil.copy(os.path.join(work, "cluster.key"), self.dir)
        os.chmod(os.path.join(self.dir, "cluster.key"), 0o600)
        with open(os.path.join(self.dir, "switchyard.toml"), "w") as f:
            f.write(
                f'[dns]\nlisten = ["127.0.0.1:{free_port(socket.SOCK_DGRAM)}"]\n'
                f'[admin]\nlisten = "{self.admin}"\n'
                f'[cluster]\nnode = "ns{i}"\nlisten = "127.0.0.1:{gossip[i - 1]}"\n'
                f'seeds = [{seeds}]\nkey = {{ file = "cluster.key" }}\n{EXTRA}\n'
                f'[prober]\nsource_v4 = "127.0.0.{i + 1}"\n'
                '[[zones]]\norigin = "bench.test."\nns = ["ns1.bench.test."]\n'
                'records = [{ name = "ns1", type = "A", value = "192.0.2.53" }]\n'
            )
        self.proc = None
        self.start()

    def start(self):
        log = open(os.path.join(self.dir, "log"), "a")
        self.proc = subprocess.Popen(
            [self.bin, "serve", "-c", os.path.join(self.dir, "switchyard.toml")],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "RUST_LOG": "info"},
        )

    def log(self):
        with open(os.path.join(self.dir, "log")) as f:
            return f.read()

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait()


class Cluster:
    def __init__(self):
        self.bin = build()
        self.work = tempfile.mkdtemp(prefix="sy-faults-")
        with open(os.path.join(self.work, "cluster.key"), "w") as f:
            f.write("YmVuY2gtY2x1c3Rlci1rZXktYmVuY2gtY2x1c3Rlci1rZXk=\n")
        self.backend_port = free_port(socket.SOCK_STREAM)
        self.backend = subprocess.Popen(
            [
                os.path.join(ROOT, "target/release/examples/health_backend"),
                str(self.backend_port),
                "200",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        gossip = [free_port(socket.SOCK_DGRAM) for _ in range(NODES)]
        self.nodes = [
            Node(self.bin, self.work, i, gossip, self.backend_port)
            for i in range(1, NODES + 1)
        ]
        self.wait_all_alive(60)

    def wait_all_alive(self, within):
        end = time.time() + within
        while time.time() < end:
            try:
                if all(
                    len(s) == NODES and all(n["state"] == "alive" for n in s.values())
                    for s in (states(n.admin) for n in self.nodes)
                ):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit("the cluster never formed")

    def close(self):
        for n in self.nodes:
            if n.proc and n.proc.poll() is None:
                n.proc.kill()
        self.backend.kill()
        shutil.rmtree(self.work, ignore_errors=True)


def gossip_rate(c, secs):
    """Gossip bytes sent per second by each node over `secs`."""
    before = [metric(n.admin, 'switchyard_cluster_gossip_bytes_total{direction="sent"}') for n in c.nodes]
    t0 = time.time()
    time.sleep(secs)
    after = [metric(n.admin, 'switchyard_cluster_gossip_bytes_total{direction="sent"}') for n in c.nodes]
    dt = time.time() - t0
    return [(a - b) / dt for a, b in zip(after, before)]


def detect():
    trials = int(os.environ.get("TRIALS", "10"))
    c = Cluster()
    try:
        times = []
        for t in range(trials):
            victim = c.nodes[1 + t % (NODES - 1)]
            watchers = [n for n in c.nodes if n is not victim]
            time.sleep(random.uniform(0.5, 1.5))
            t0 = time.time()
            victim.proc.send_signal(signal.SIGSTOP)
            seen = {}
            while len(seen) < len(watchers) and time.time() - t0 < 60:
                for w in watchers:
                    if w.i not in seen and states(w.admin)[f"ns{victim.i}"]["state"] == "dead":
                        seen[w.i] = time.time() - t0
                time.sleep(0.02)
            victim.proc.send_signal(signal.SIGCONT)
            times.extend(seen.values())
            print(f"trial {t + 1}: ns{victim.i} stopped; declared dead after "
                  + ", ".join(f"{v:.2f}s (ns{k})" for k, v in sorted(seen.items())))
            c.wait_all_alive(60)
        print(f"{NODES} nodes, {EXTRA.strip() or 'default settings'}: a stopped node is declared dead after "
              f"median {statistics.median(times):.2f} s (range {min(times):.2f}-{max(times):.2f} s, "
              f"{len(times)} observations)")
    finally:
        c.close()


def load():
    duration = int(os.environ.get("DURATION", "120"))
    c = Cluster()
    try:
        time.sleep(5)
        marks = [len(n.log()) for n in c.nodes]
        if shutil.which("stress-ng"):
            hog = subprocess.Popen(
                ["stress-ng", "--cpu", str(os.cpu_count()), "--timeout", f"{duration}s", "--quiet"]
            )
        else:
            hog = subprocess.Popen(
                ["sh", "-c", " & ".join(["timeout %d sh -c 'while :; do :; done'" % duration] * os.cpu_count()) + "; wait"]
            )
        worst = 0.0
        end = time.time() + duration
        while time.time() < end:
            for n in c.nodes:
                try:
                    for s in states(n.admin).values():
                        worst = max(worst, s["last_heard_s"])
                except OSError:
                    pass
            time.sleep(0.5)
        hog.wait()
        deaths = 0
        for n, m in zip(c.nodes, marks):
            new = n.log()[m:]
            d = new.count("cluster node dead")
            deaths += d
            if d:
                print(f"ns{n.i}: {d} false deaths")
        print(f"{NODES} nodes, {ENDPOINTS} endpoints each, {EXTRA.strip() or 'default settings'}, "
              f"{os.cpu_count()} CPU hogs for {duration} s: {deaths} false deaths; "
              f"longest silence seen {worst:.1f} s")
    finally:
        c.close()


def restarts():
    n_restarts = int(os.environ.get("RESTARTS", "20"))
    c = Cluster()
    try:
        # Every endpoint decided (first probes spread over 10 s) and every
        # node's state exchanged: the steady state.
        time.sleep(int(os.environ.get("WARMUP", "30")))
        fresh = gossip_rate(c, 20)
        victim = c.nodes[-1]
        for r in range(n_restarts):
            victim.kill()
            victim.start()
            c.wait_all_alive(60)
        after = gossip_rate(c, 10)
        t_restarted = time.time()
        print(f"{NODES} nodes, {ENDPOINTS} endpoints each, {EXTRA.strip() or 'default settings'}")
        print("fresh cluster:           gossip sent per node " + ", ".join(f"{x / 1000:.1f}" for x in fresh) + " KB/s")
        print(f"just after {n_restarts} restarts:  gossip sent per node " + ", ".join(f"{x / 1000:.1f}" for x in after) + " KB/s")
        # The restarted node itself is a fresh process: compare the others.
        ref = statistics.mean(fresh[:-1])
        while True:
            now = gossip_rate(c, 10)
            ratio = statistics.mean(now[:-1]) / ref
            print(f"  {time.time() - t_restarted:5.0f} s later: " + ", ".join(f"{x / 1000:.1f}" for x in now)
                  + f" KB/s (ratio to fresh, ns1-ns{NODES - 1}: {ratio:.2f})")
            if ratio <= 1.2 or time.time() - t_restarted > int(os.environ.get("MAX_WAIT", "600")):
                break
        if ratio <= 1.2:
            print(f"back within 1.2x of the fresh cluster {time.time() - t_restarted:.0f} s after the last restart "
                  f"(ratio {ratio:.2f})")
        else:
            print(f"still {ratio:.2f}x the fresh cluster {time.time() - t_restarted:.0f} s after the last restart")
    finally:
        c.close()


if __name__ == "__main__":
    {"detect": detect, "load": load, "restarts": restarts}[sys.argv[1] if len(sys.argv) > 1 else "detect"]()
