#!/usr/bin/env python3
"""Sends hand-made Ethernet frames to the XDP path's interface and reports
what came back, one JSON line per case (tests/it/xdp.rs reads them).

    xdp_frames.py OUTER SERVER_MAC CLIENT_V4 SERVER_V4 CLIENT_V6 SERVER_V6 QUERY_HEX

Each case has its own source port, so a reply is matched to its case. The
replies collected are UDP datagrams from port 53 (their DNS payload, hex)
and ICMP echo replies.
"""
import json
import socket
import struct
import sys
import time

outer, server_mac, c4, s4, c6, s6, query_hex = sys.argv[1:8]
query = bytes.fromhex(query_hex)
smac = bytes.fromhex(server_mac.replace(":", ""))
cmac = bytes.fromhex(open(f"/sys/class/net/{outer}/address").read().strip().replace(":", ""))
C4, S4 = socket.inet_aton(c4), socket.inet_aton(s4)
C6, S6 = socket.inet_pton(socket.AF_INET6, c6), socket.inet_pton(socket.AF_INET6, s6)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def udp(src, dst, sport, payload, pseudo, check=True):
    length = 8 + len(payload)
    hdr = struct.pack("!HHHH", sport, 53, length, 0)
    c = csum(pseudo(length) + hdr + payload) if check else 0
    return struct.pack("!HHHH", sport, 53, length, c or 0xFFFF) + payload


def v4(sport, payload=query, ihl=5, flags=0, tot=None, ipsum=True, udpsum=True, dst=None, proto=17, dmac=None):
    dst = dst or S4
    opts = b"\x01" * (4 * (ihl - 5))  # NOP options
    pseudo = lambda n: C4 + dst + struct.pack("!BBH", 0, 17, n)
    body = udp(C4, dst, sport, payload, pseudo) if proto == 17 else payload
    if not udpsum:
        body = body[:6] + struct.pack("!H", (struct.unpack("!H", body[6:8])[0] ^ 0x5A5A) or 1) + body[8:]
    total = tot if tot is not None else 4 * ihl + len(body)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, flags, 64, proto, 0, C4, dst) + opts
    c = csum(hdr)
    if not ipsum:
        c ^= 0x1111
    hdr = hdr[:10] + struct.pack("!H", c) + hdr[12:]
    return (dmac or smac) + cmac + b"\x08\x00" + hdr + body


def v6(sport, payload=query, ext=False, udpsum=True, plen=None):
    pseudo = lambda n: C6 + S6 + struct.pack("!IxxxB", n, 17)
    body = udp(C6, S6, sport, payload, pseudo)
    if not udpsum:
        body = body[:6] + b"\0\0" + body[8:]
    nh = 17
    if ext:  # a hop-by-hop options header (PadN) in front of UDP
        body = struct.pack("!BB", 17, 0) + b"\x01\x04\0\0\0\0" + body
        nh = 0
    length = plen if plen is not None else len(body)
    hdr = struct.pack("!IHBB16s16s", 6 << 28, length, nh, 64, C6, S6)
    return smac + cmac + b"\x86\xdd" + hdr + body


def icmp_echo(ident):
    body = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"switchyard"
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 2, 0, 64, 1, 0, C4, S4)
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return smac + cmac + b"\x08\x00" + hdr + body


good = v4(40001)
tagged = v4(40018)
vlan = tagged[:12] + b"\x81\x00\x00\x07" + tagged[12:]
cases = [
    ("valid_v4", good),
    ("valid_v6", v6(40002)),
    ("ipv4_options", v4(40003, ihl=6)),
    ("ipv6_extension_header", v6(40004, ext=True)),
    ("bad_ip_checksum", v4(40005, ipsum=False)),
    ("bad_udp_checksum", v4(40006, udpsum=False)),
    ("bad_udp_checksum_v6", v6(40007, udpsum=False)),
    ("ip_length_past_frame", v4(40008, tot=len(good) + 40)),
    ("ip_length_short", v4(40009, tot=24)),
    ("ipv6_length_past_frame", v6(40010, plen=400)),
    ("fragment_first", v4(40011, flags=0x2000)),
    ("fragment_later", v4(40012, flags=0x0010)),
    ("vlan_tagged", vlan),
    ("truncated_udp", v4(40019)[: 14 + 20 + 5]),
    ("truncated_dns", v4(40020)[:-3]),
    ("truncated_ip", v4(40021)[: 14 + 12]),
    ("ethernet_only", v4(40022)[:14]),
    ("broadcast_mac", v4(40013, dmac=b"\xff" * 6)),
    ("to_another_address", v4(40014, dst=socket.inet_aton("10.213.254.254"))),
    ("empty_dns", v4(40015, payload=b"")),
    ("garbage_dns", v4(40016, payload=b"\xff" * 40)),
    ("icmp_echo", icmp_echo(0x5359)),
]

def case_port(frame):
    """The source port a case's frame was sent from (0 if it has none)."""
    off = 14 + (4 if frame[12:14] == b"\x81\x00" else 0)
    if frame[off - 2:off] == b"\x08\x00" and len(frame) >= off + 24:
        return struct.unpack("!H", frame[off + (frame[off] & 15) * 4:][:2])[0]
    if frame[off - 2:off] == b"\x86\xdd" and len(frame) >= off + 42:
        nh, l4 = frame[off + 6], off + 40
        if nh == 0:
            l4 += 8
        return struct.unpack("!H", frame[l4:l4 + 2])[0]
    return 0


sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
sock.bind((outer, 0))
sock.settimeout(0.05)


seen = {"frames": 0, "from_server": 0}


def replies(until):
    got = []
    while time.time() < until + 5:  # bounded, whatever arrives
        try:
            f = sock.recv(65535)
        except socket.timeout:
            # Past the deadline, stop at the first empty read: what the
            # socket buffered while this process waited for a CPU is read
            # first.
            if time.time() >= until:
                break
            continue
        seen["frames"] += 1
        if f[6:12] != smac:
            continue
        t = f[12:14]
        if t == b"\x08\x00":
            ihl = (f[14] & 15) * 4
            proto, l4 = f[14 + 9], 14 + ihl
            if proto == 17 and struct.unpack("!H", f[l4:l4 + 2])[0] == 53:
                got.append(("udp", struct.unpack("!H", f[l4 + 2:l4 + 4])[0], f[l4 + 8:].hex()))
            elif proto == 1 and f[l4] == 0:
                got.append(("icmp", struct.unpack("!H", f[l4 + 4:l4 + 6])[0], ""))
        elif t == b"\x86\xdd" and f[14 + 6] == 17:
            l4 = 14 + 40
            if struct.unpack("!H", f[l4:l4 + 2])[0] == 53:
                got.append(("udp", struct.unpack("!H", f[l4 + 2:l4 + 4])[0], f[l4 + 8:].hex()))
    return got


# Everything is sent, then replies are collected for a while and matched
# to their case by port (ICMP by identifier), so a slow reply is never
# taken for another case's.
start = time.time()
for name, frame in cases:
    sock.send(frame)
    time.sleep(0.01)
got = replies(time.time() + float(sys.argv[8]) if len(sys.argv) > 8 else start + 3.0)
ports = {}
for name, frame in cases:
    ports[name] = []
for kind, port, payload in got:
    for name, frame in cases:
        if name == "icmp_echo" and kind == "icmp" and port == 0x5359:
            ports[name].append(payload)
        elif kind == "udp" and name != "icmp_echo" and len(frame) > 40 and port == case_port(frame):
            ports[name].append(payload)
print(json.dumps(ports), flush=True)
print(json.dumps(seen), file=sys.stderr, flush=True)
