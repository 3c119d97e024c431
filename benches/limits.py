#!/usr/bin/env python3
"""Memory and flood figures for README's "Security and limits" section.

Starts the release binary (builds it first) on loopback and measures:

  rrl       RSS before and after a flood of UDP queries from random spoofed
            addresses (every one a different 127.x.y.z source), and how many
            answers the flood got back
  reflect   packets a reflector that answers everything exchanges with the
            server in 2 s after one spoofed packet
  tcp       RSS per open TCP connection (each has answered one query), and
            RSS after they close; then 30 rounds of 1,000 slowloris
            connections
  lockout   1,100 TCP connections re-querying every 8 s (from one address,
            then twenty) against fresh queries from another address
  metrics   /metrics size with 20,000 endpoints, and peak RSS before and
            after 60 concurrent scrapes

SWITCHYARD_BIN=path/to/switchyard measures another build (for lockout and
reflect, which use only settings older builds have).

    benches/limits.py              # all of them
    benches/limits.py tcp metrics  # some

Loopback only; every loop is bounded.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SWITCHYARD_BIN") or os.path.join(ROOT, "target", "release", "switchyard")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def query(name, qid=0x1234):
    q = qid.to_bytes(2, "big") + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00\x00\x01\x00\x01"


class Server:
    def __init__(self, extra="", profiles=None,
                 dns="max_tcp_connections = 20000\nmax_tcp_per_client = 1000\n"):
        self.dir = tempfile.mkdtemp(prefix="switchyard-limits-")
        os.mkdir(os.path.join(self.dir, "profiles"))
        self.port, self.admin = free_port(), free_port()
        profiles = profiles or {"todoapi.toml": TODOAPI}
        for name, text in profiles.items():
            with open(os.path.join(self.dir, "profiles", name), "w") as f:
                f.write(text)
        with open(os.path.join(self.dir, "switchyard.toml"), "w") as f:
            f.write(f"[dns]\nlisten = [\"127.0.0.1:{self.port}\"]\n{dns}")
            f.write(extra)
            f.write(f"\n[admin]\nlisten = \"127.0.0.1:{self.admin}\"\n")
            f.write(ZONE)
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", os.path.join(self.dir, "switchyard.toml")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=dict(os.environ, RUST_LOG="warn"))
        for _ in range(200):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.05)
        time.sleep(0.3)

    def rss(self):
        return kb(self.proc.pid, "VmRSS")

    def hwm(self):
        return kb(self.proc.pid, "VmHWM")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


ZONE = """
[[zones]]
origin = "tm.example.test."
ns = ["ns1.tm.example.test."]
records = [{ name = "ns1", type = "A", value = "192.0.2.53" }]
"""
TODOAPI = """name = "todoapi.tm.example.test."
routing = "priority"
[[endpoints]]
name = "primary"
target = "203.0.113.10"
"""


def rrl():
    s = Server("[dns.rate_limit]\nexempt = []\n")
    try:
        before = s.rss()
        q = query("todoapi.tm.example.test")
        sent = got = 0
        rnd = random.Random(7)
        start = time.time()
        socks = []
        while time.time() - start < 20 and sent < 200000:
            src = f"127.{rnd.randrange(1, 255)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind((src, 0))
            u.setblocking(False)
            u.sendto(q, ("127.0.0.1", s.port))
            sent += 1
            socks.append(u)
            if len(socks) >= 200:
                time.sleep(0.002)
                for v in socks:
                    try:
                        while v.recv(512):
                            got += 1
                    except BlockingIOError:
                        pass
                    v.close()
                socks = []
        took = time.time() - start
        after = s.rss()
        # The victim: one address asking 1,000 times as fast as it can.
        v = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        v.bind(("127.9.9.9", 0))
        v.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        v.settimeout(0.3)
        for i in range(1000):
            v.sendto(query("todoapi.tm.example.test", i), ("127.0.0.1", s.port))
            if i % 50 == 49:
                time.sleep(0.001)
        answers = truncated = 0
        try:
            while True:
                r = v.recv(512)
                if r[2] & 0x02:
                    truncated += 1
                else:
                    answers += 1
        except socket.timeout:
            pass
        print(f"rrl: {sent} queries from {sent} random source addresses in {took:.1f} s, "
              f"{got} answered; RSS {before} kB before, {after} kB after "
              f"(+{after - before} kB; the counter table is 512 KiB)")
        print(f"rrl: one address sending 1000 queries at once: {answers} answered, "
              f"{truncated} truncated, {1000 - answers - truncated} dropped")
    finally:
        s.stop()


def reflect():
    s = Server()
    try:
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.bind(("127.0.0.2", 0))
        r.settimeout(0.05)
        quote = b"Quote of the day: the answer is always yes, to anyone.\r\n"
        r.sendto(quote, ("127.0.0.1", s.port))
        n = 0
        start = time.time()
        while time.time() - start < 2:
            try:
                _, a = r.recvfrom(2048)
                n += 1
                r.sendto(quote, a)
            except socket.timeout:
                pass
        print(f"reflect: one spoofed packet from a service that answers everything: "
              f"{n} packets exchanged in 2 s (default settings)")
    finally:
        s.stop()


def tcp():
    s = Server()
    try:
        q = query("todoapi.tm.example.test")
        frame = len(q).to_bytes(2, "big") + q
        for i in range(50):  # warm every runtime thread
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(frame)
            c.recv(512)
            c.close()
        time.sleep(0.5)
        base = s.rss()
        n = 8000
        conns = []
        for i in range(n):
            c = socket.socket()
            c.bind((f"127.1.{i // 250}.{1 + i % 250}", 0))
            c.connect(("127.0.0.1", s.port))
            c.sendall(frame)
            c.recv(512)
            conns.append(c)
        open_rss = s.rss()
        for c in conns:
            c.close()
        time.sleep(5)
        after = s.rss()
        print(f"tcp: RSS {base} kB, {open_rss} kB with {n} open connections "
              f"({(open_rss - base) * 1024 // n} bytes each), {after} kB 5 s after they closed")
        # 30 rounds of 1,000 slowloris connections (one byte of a length).
        peak = base
        for r in range(30):
            conns = []
            for i in range(1000):
                c = socket.socket()
                c.bind((f"127.2.{i // 250}.{1 + i % 250}", 0))
                c.connect(("127.0.0.1", s.port))
                c.sendall(b"\x00")
                conns.append(c)
            peak = max(peak, s.rss())
            for c in conns:
                c.close()
        time.sleep(5)
        print(f"tcp: 30 rounds of 1000 slowloris connections: peak RSS {peak} kB, "
              f"{s.rss()} kB 5 s after the last round (baseline {base} kB)")
    finally:
        s.stop()


def lockout():
    """The attack of issue #9: 1,100 TCP connections that each send a query
    every 8 s (under the idle timeout), from one address and then from 20;
    meanwhile fresh connections from another address, each with one query.
    Default limits (1,024 in all, 64 per client)."""
    import selectors
    q = query("todoapi.tm.example.test")
    frame = len(q).to_bytes(2, "big") + q
    for sources in (1, 20):
        s = Server(dns="")
        try:
            conns = []
            for i in range(1100):
                c = socket.socket()
                c.bind((f"127.5.0.{1 + i % sources}", 0))
                try:
                    c.connect(("127.0.0.1", s.port))
                    c.sendall(frame)
                    c.setblocking(False)
                    conns.append(c)
                except OSError:
                    c.close()
            stop = time.time() + 20
            held = [0]

            def attacker():
                last = 0
                while time.time() < stop:
                    if time.time() - last >= 8:
                        last = time.time()
                        alive = 0
                        for c in conns:
                            try:
                                while c.recv(4096):
                                    pass
                            except BlockingIOError:
                                pass
                            except OSError:
                                continue
                            try:
                                c.sendall(frame)
                                alive += 1
                            except OSError:
                                pass
                        held[0] = alive
                    time.sleep(0.05)

            t = threading.Thread(target=attacker)
            t.start()
            ok = total = 0
            while time.time() < stop - 1:
                total += 1
                try:
                    c = socket.socket()
                    c.bind(("127.6.0.1", 0))
                    c.settimeout(2)
                    c.connect(("127.0.0.1", s.port))
                    c.sendall(frame)
                    if len(c.recv(4096)) > 2:
                        ok += 1
                    c.close()
                except OSError:
                    pass
                time.sleep(0.05)
            t.join()
            for c in conns:
                c.close()
            print(f"lockout: 1100 connections from {sources} address(es) re-querying every 8 s "
                  f"({held[0]} still open at the last round): {ok} of {total} fresh queries "
                  f"from another address answered ({100 * ok / max(total, 1):.1f}%)")
        finally:
            s.stop()


def metrics():
    profiles = {}
    for p in range(20):
        text = f"name = \"p{p}.tm.example.test.\"\nrouting = \"weighted\"\n[monitor]\nprotocol = \"tcp\"\nport = 9\ninterval = \"1h\"\n"
        for e in range(1000):
            text += f"[[endpoints]]\nname = \"endpoint-{e}\"\ntarget = \"10.{p}.{e // 256}.{e % 256}\"\n"
        profiles[f"p{p}.toml"] = text
    s = Server(profiles=profiles)
    try:
        url = f"http://127.0.0.1:{s.admin}/metrics"
        time.sleep(1)
        idle = s.hwm()
        body = urllib.request.urlopen(url, timeout=60).read()
        time.sleep(1.5)
        before = s.hwm()
        sizes = []

        def scrape():
            sizes.append(len(urllib.request.urlopen(url, timeout=120).read()))

        threads = [threading.Thread(target=scrape) for _ in range(60)]
        start = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.time() - start
        after = s.hwm()
        print(f"metrics: 20000 endpoints: one scrape is {len(body) // 1024} KiB "
              f"({len(body) // 20000} bytes per endpoint), peak RSS {idle} kB before it; 60 concurrent scrapes "
              f"({len(sizes)} served in {took:.1f} s): peak RSS {before} kB before, {after} kB after "
              f"(+{after - before} kB)")
    finally:
        s.stop()


def main():
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    wanted = sys.argv[1:] or ["rrl", "reflect", "tcp", "lockout", "metrics"]
    for w in wanted:
        {"rrl": rrl, "reflect": reflect, "tcp": tcp, "lockout": lockout, "metrics": metrics}[w]()


if __name__ == "__main__":
    main()
