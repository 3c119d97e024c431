#!/usr/bin/env python3
"""Instructions per answered query, counted by valgrind (callgrind): a
deterministic measure of the answer path's CPU, for comparing two builds
where the timing benchmark (benches/dnsperf.sh) cannot resolve a few per
cent on a noisy machine.

    benches/instructions.py                       # this tree alone
    BASELINE_REV=ca17e25 benches/instructions.py  # and an earlier commit
    BASELINE=/tmp/old/switchyard benches/instructions.py   # a profiling build
    TRAFFIC=1 benches/instructions.py             # and this tree with [traffic] off
    WORKER=1 BURST=10 benches/instructions.py     # the UDP worker alone, 10 queries at a time

Each build serves the same configuration (one UDP worker, no probes) under
callgrind, twice: once answering N queries and once 2N, each query sent
after the previous answer arrived. The difference of the two runs' totals,
divided by N, is what one query costs in the whole process (receive loop,
parsing, routing, encoding, counters, send: user space only, the kernel is
not counted), with start-up, loading and shutdown cancelled out. It is
not noise-free: what depends on time (a clock read per batch, counters
written once a second, how many queries one receive call takes) and
weighted routing's random draws move a build's figure by up to 2 % between
runs (2,340-2,374 for the same build's priority answer); far less than
timing on a shared machine, where pairs of runs differ by 20 %.

WORKER=1 counts the UDP worker thread alone (callgrind --separate-threads;
the thread that ran the UDP receive loop, found by its symbols, so both
builds must have them, as profiling builds do): what the answer path and
its receive loop cost, without the background tasks whose work follows
the clock rather than the queries (the drain, the latency table's upkeep),
which is what moves the whole process's figure most. BURST=k sends k
queries before reading their answers, so the receive loop takes several
per system call as it does under load (dnsperf keeps 100 in flight) and
what it does once per batch is shared; the default, one at a time, charges
every query a whole batch.

Installs valgrind from Debian when missing. Loopback only; every step is
bounded by a timeout.
"""

import os
import pathlib
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
N = int(os.environ.get("QUERIES", "2000"))
WORKER = os.environ.get("WORKER") == "1"
BURST = max(1, int(os.environ.get("BURST", "1")))

CONFIG = """
[dns]
listen = ["127.0.0.1:{port}"]
udp_workers = 1

[admin]
listen = "127.0.0.1:{admin}"

[profiles]
dir = "profiles"

[[zones]]
origin = "tm.example.test."
ns = ["ns1.tm.example.test."]
records = [{{ name = "ns1", type = "A", value = "192.0.2.53" }}]
"""

PROFILES = {
    "api.toml": """
name = "api.tm.example.test."
routing = "priority"
[[endpoints]]
name = "primary"
target = "192.0.2.10"
[[endpoints]]
name = "secondary"
target = "192.0.2.11"
""",
    "split.toml": """
name = "split.tm.example.test."
routing = "weighted"
[[endpoints]]
name = "a"
target = "192.0.2.20"
weight = 3
[[endpoints]]
name = "b"
target = "192.0.2.21"
""",
}

# (label, name, qtype): what a query asks.
CASES = [
    ("priority A", "api.tm.example.test.", 1),
    ("weighted A", "split.tm.example.test.", 1),
    ("NXDOMAIN", "nope.tm.example.test.", 1),
]


def need(tool, package):
    if shutil.which(tool):
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"installing {package}", file=sys.stderr)
    subprocess.run(sudo + ["apt-get", "update", "-qq"], check=False)
    subprocess.run(
        sudo + ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        check=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        stdout=subprocess.DEVNULL,
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(name, qtype, qid):
    wire = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + wire + struct.pack(">HH", qtype, 1)


def build(rev=None):
    """A profiling build (release with symbols) of this tree or of `rev`."""
    if rev is None:
        subprocess.run(["cargo", "build", "--quiet", "--profile", "profiling"], cwd=ROOT, check=True)
        return ROOT / "target/profiling/switchyard"
    out = ROOT / "target" / f"switchyard-{rev}"
    if out.exists():
        return out
    tree = pathlib.Path(tempfile.mkdtemp(prefix="sy-baseline-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # The same target directory: the dependencies are built once.
        subprocess.run(["cargo", "build", "--quiet", "--profile", "profiling"], cwd=tree, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": str(ROOT / "target")})
        shutil.copy(ROOT / "target/profiling/switchyard", out)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    return out


def instructions(binary, work, name, qtype, count, extra=""):
    """Instructions of one server run answering `count` queries: the
    process's total, or with WORKER the UDP worker thread's."""
    port, admin = free_port(), free_port()
    (work / "switchyard.toml").write_text(CONFIG.format(port=port, admin=admin) + extra)
    out = work / "callgrind.out"
    log = open(work / "server.log", "w+")
    for old in work.glob("callgrind.out*"):
        old.unlink()
    threads = ["--separate-threads=yes"] if WORKER else []
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *threads,
         str(binary), "serve", "-c", str(work / "switchyard.toml")],
        stdout=log, stderr=log, cwd=work,
    )
    try:
        deadline = time.monotonic() + 120
        while "dns listening" not in (work / "server.log").read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{binary} did not start:\n{(work / 'server.log').read_text()}")
            time.sleep(0.2)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(10)
            for first in range(0, count, BURST):
                ids = range(first, min(first + BURST, count))
                for i in ids:
                    s.sendto(query(name, qtype, i & 0xFFFF), ("127.0.0.1", port))
                got = sorted(s.recvfrom(4096)[0][:2] for _ in ids)
                assert got == sorted(struct.pack(">H", i & 0xFFFF) for i in ids), "a reply to another query"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    counts = {}
    for f in work.glob("callgrind.out*"):
        text = f.read_text(errors="replace")
        m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if not m:
            continue
        # The UDP worker: the thread that ran its receive loop (named in a
        # build with symbols, as the profiling build is).
        if WORKER and "server::udp::" in text:
            return int(m.group(1))
        counts[f.name] = int(m.group(1))
    if WORKER:
        raise SystemExit(f"WORKER=1: no UDP worker thread in {work} (a build without symbols?)")
    if not counts:
        raise SystemExit(f"no total in {out}")
    return sum(counts.values())


def per_query(binary, name, qtype, extra=""):
    with tempfile.TemporaryDirectory() as d:
        work = pathlib.Path(d)
        (work / "profiles").mkdir()
        for f, body in PROFILES.items():
            (work / "profiles" / f).write_text(body)
        one = instructions(binary, work, name, qtype, N, extra)
        two = instructions(binary, work, name, qtype, 2 * N, extra)
    return (two - one) / N


def main():
    need("valgrind", "valgrind")
    builds = []
    if os.environ.get("BASELINE"):
        builds.append(("baseline", pathlib.Path(os.environ["BASELINE"])))
    elif os.environ.get("BASELINE_REV"):
        rev = os.environ["BASELINE_REV"]
        builds.append((f"baseline {rev}", build(rev)))
    builds = [(label, binary, "") for label, binary in builds]
    tree = build()
    builds.append(("this tree", tree, ""))
    # TRAFFIC=1: this tree again with the Traffic View off.
    if os.environ.get("TRAFFIC") == "1":
        builds.append(("traffic off", tree, "\n[traffic]\nenabled = false\n"))
    what = "the UDP worker thread" if WORKER else "the whole process"
    print(f"instructions per answered query (callgrind, {N} vs {2 * N} queries, {BURST} at a time, "
          f"one UDP worker; {what})")
    for label, name, qtype in CASES:
        counts = [(b, per_query(binary, name, qtype, extra)) for b, binary, extra in builds]
        line = f"  {label:12}" + "".join(f"  {b}: {c:8.0f}" for b, c in counts)
        for b, c in counts[1:]:
            line += f"  ratio {b}/{counts[0][0]} {c / counts[0][1]:.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
