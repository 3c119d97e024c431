#!/usr/bin/env python3
"""Generates src/admin/world.json: the country shapes the status page's
Traffic View map draws, as SVG path data keyed by ISO 3166-1 alpha-2 code.

Input: Natural Earth's 1:110m countries (public domain), as TopoJSON in the
npm package world-atlas 2.0.2 (ISC; Natural Earth 4.1.0), and Debian's
iso-codes (numeric -> alpha-2 codes):

    npm pack world-atlas@2.0.2 && tar xzf world-atlas-2.0.2.tgz
    tools/gen-world.py package/countries-110m.json > src/admin/world.json

Projection: equirectangular, x = longitude + 180, y = 84 - latitude (0..360
by 0..142: 84 N to 58 S; Antarctica left out; outer rings only, largest
country first), coordinates simplified with
Douglas-Peucker at 0.25 degrees and written to 0.1 degree with relative
moves, so the whole map is about 40 KB. Nothing here runs at build, test or
run time: the output is committed beside this script.
"""

import json
import sys

TOP, BOTTOM = 84.0, -58.0
TOLERANCE = 0.25


def decode_arcs(topo):
    sx, sy = topo["transform"]["scale"]
    tx, ty = topo["transform"]["translate"]
    arcs = []
    for arc in topo["arcs"]:
        x = y = 0
        pts = []
        for dx, dy in arc:
            x += dx
            y += dy
            pts.append((x * sx + tx, y * sy + ty))
        arcs.append(pts)
    return arcs


def ring(arcs, indexes):
    pts = []
    for i in indexes:
        a = arcs[i] if i >= 0 else list(reversed(arcs[~i]))
        pts.extend(a if not pts else a[1:])
    return pts


def unwrap(pts):
    """A ring that crosses the antimeridian (Russia, Fiji) kept in one
    piece: longitudes continued past 180 (drawn beyond the map's edge and
    clipped there) instead of a line across the whole map."""
    out = [pts[0]]
    for lon, lat in pts[1:]:
        prev = out[-1][0]
        while lon - prev > 180:
            lon -= 360
        while prev - lon > 180:
            lon += 360
        out.append((lon, lat))
    # Most of the ring on the map (Russia starting from Chukotka).
    outside = sum(1 if lon > 180 else -1 if lon < -180 else 0 for lon, _ in out)
    if abs(outside) > len(out) / 2:
        shift = -360 if outside > 0 else 360
        out = [(lon + shift, lat) for lon, lat in out]
    return out


def perpendicular(p, a, b):
    (x, y), (x1, y1), (x2, y2) = p, a, b
    dx, dy = x2 - x1, y2 - y1
    if dx == dy == 0:
        return ((x - x1) ** 2 + (y - y1) ** 2) ** 0.5
    return abs(dy * x - dx * y + x2 * y1 - y2 * x1) / (dx * dx + dy * dy) ** 0.5


def simplify(pts, tol):
    if len(pts) < 3:
        return pts
    keep = [False] * len(pts)
    keep[0] = keep[-1] = True
    stack = [(0, len(pts) - 1)]
    while stack:
        i, j = stack.pop()
        best, at = 0.0, None
        for k in range(i + 1, j):
            d = perpendicular(pts[k], pts[i], pts[j])
            if d > best:
                best, at = d, k
        if at is not None and best > tol:
            keep[at] = True
            stack += [(i, at), (at, j)]
    return [p for p, k in zip(pts, keep) if k]


def area(pts):
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(pts, pts[1:] + pts[:1]))) / 2


def path(rings):
    out = []
    for r in rings:
        q = [(round((lon + 180) * 10), round((TOP - max(min(lat, TOP), BOTTOM)) * 10)) for lon, lat in r]
        dedup = [q[0]] + [p for prev, p in zip(q, q[1:]) if p != prev]
        if len(dedup) < 3:
            continue
        x, y = dedup[0]
        cmd = ["M%g %g" % (x / 10, y / 10)]
        for nx, ny in dedup[1:]:
            cmd.append("l%g %g" % ((nx - x) / 10, (ny - y) / 10))
            x, y = nx, ny
        out.append(" ".join(cmd) + "z")
    return "".join(out)


def main():
    topo = json.load(open(sys.argv[1]))
    codes = {
        c["numeric"]: c["alpha_2"]
        for c in json.load(open("/usr/share/iso-codes/json/iso_3166-1.json"))["3166-1"]
    }
    arcs = decode_arcs(topo)
    shapes = {}
    for g in topo["objects"]["countries"]["geometries"]:
        cc = codes.get(g.get("id"))
        if not cc or cc == "AQ" or g["type"] not in ("Polygon", "MultiPolygon"):
            continue
        polys = g["arcs"] if g["type"] == "MultiPolygon" else [g["arcs"]]
        rings = []
        for poly in polys:
            outer = simplify(unwrap(ring(arcs, poly[0])), TOLERANCE)
            if len(outer) >= 4 and area(outer) >= 0.3:
                rings.append(outer)
        if rings:
            d, a = shapes.get(cc, ("", 0.0))
            shapes[cc] = (d + path(rings), a + sum(area(r) for r in rings))
    # Largest first, so a country inside another (Lesotho) is drawn on top.
    order = sorted(shapes.items(), key=lambda kv: (-kv[1][1], kv[0]))
    json.dump({cc: d for cc, (d, _) in order}, sys.stdout, separators=(",", ":"))
    sys.stdout.write("\n")


main()
