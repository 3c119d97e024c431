#!/usr/bin/env python3
"""Writes the Debian package's machine-readable copyright file (DEP-5).

    deploy/debian/copyright.py OUT

Switchyard itself (Apache-2.0), the bundled GeoIP database (CC BY 4.0)
and every crate statically linked into the binary: the crates are the
normal (not dev, not build) dependencies `cargo metadata` resolves for
the Linux target, walked from switchyard, procedural macros included
(their output is compiled in). Each crate's licence is its Cargo
`license` expression; its copyright holders are the copyright lines of
the licence files it ships and its Cargo authors. `cargo deb` writes only Switchyard's
own licence, so the package build runs this instead.

Every licence named needs its text: deploy/debian/licenses/<name> (or
/usr/share/common-licenses on Debian). A dependency that brings a
licence without a text fails the build, naming the crate, so the file
never silently omits one.
"""

import json
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXTS = os.path.join(REPO, "deploy", "debian", "licenses")
# Licences Debian ships in /usr/share/common-licenses: referenced, not copied.
COMMON = {"Apache-2.0", "CC0-1.0"}
# C libraries that a -sys crate compiles in under a licence its Cargo
# `license` field does not name: (files inside the crate, licence file, licence).
BUNDLED_C = {
    "tikv-jemalloc-sys": ("jemalloc/*", "jemalloc/COPYING", "BSD-2-Clause"),
}
LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|copyright|unlicense|notice)", re.I)
COPYRIGHT_LINE = re.compile(r"^\s*(?://|#|\*)?\s*(copyright\s*(?:\(c\)|©)?\s*\d.*)$", re.I)


def cargo_metadata():
    out = subprocess.run(
        ["cargo", "metadata", "--locked", "--format-version", "1",
         "--filter-platform", "x86_64-unknown-linux-gnu"],
        cwd=REPO, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def linked_packages(meta):
    """Packages reachable from the root through normal dependencies, sorted."""
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = meta["resolve"]["root"]
    seen, stack = set(), [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            if any(kind["kind"] is None for kind in dep["dep_kinds"]):
                stack.append(dep["pkg"])
    seen.discard(root)
    return sorted((packages[p] for p in seen), key=lambda p: (p["name"], p["version"]))


def dep5_license(expr, crate):
    """A Cargo (SPDX) licence expression in DEP-5 syntax, and its licence names."""
    if not expr:
        sys.exit(f"copyright.py: crate {crate} declares no licence")
    expr = expr.replace("/", " OR ")  # the old Cargo syntax, "MIT/Apache-2.0"
    expr = expr.replace(" WITH LLVM-exception", "-with-LLVM-exception")
    expr = re.sub(r"\s+", " ", expr).strip()
    # "(A OR B) AND C", DEP-5 has no parentheses: "A or B, and C".
    m = re.fullmatch(r"\(([^()]+)\) AND ([^()]+)", expr)
    if m:
        text = f"{m.group(1).replace(' OR ', ' or ')}, and {m.group(2).replace(' AND ', ' and ')}"
    elif "(" in expr:
        sys.exit(f"copyright.py: crate {crate}: licence expression {expr!r} not understood")
    else:
        text = expr.replace(" OR ", " or ").replace(" AND ", " and ")
    names = set(re.split(r" or | and |, and ", text))
    return text, names


def copyright_lines(directory, authors, crate):
    """The crate's copyright statements from its licence files, and its authors."""
    found = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not (LICENSE_FILE.match(name) and os.path.isfile(path)):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = COPYRIGHT_LINE.match(line)
                # Skip the Apache licence's appendix template, "Copyright [yyyy] ...".
                if m and "[" not in m.group(1):
                    text = re.sub(r"^copyright\s*(\(c\)|©)?\s*", "", m.group(1), flags=re.I).strip()
                    if text and text not in found:
                        found.append(text)
    # Authors the licence files do not name too (unicode-ident's names only Unicode, Inc.).
    names = [re.sub(r"\s*<[^>]*>", "", a).strip() for a in authors]
    names = [n for n in names if n and not any(n in line for line in found)]
    if names:
        found.append(", ".join(names))
    return found or [f"the {crate} developers"]


def field(name, lines):
    """A DEP-5 field: the first line after the name, the rest indented."""
    first, *rest = lines
    return f"{name}: {first}\n" + "".join(f" {line}\n" for line in rest)


def license_text(path):
    with open(path, encoding="utf-8") as f:
        lines = [line.rstrip() for line in f.read().strip("\n").split("\n")]
    return "".join(f" {line}\n" if line else " .\n" for line in lines)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    meta = cargo_metadata()
    root = next(p for p in meta["packages"] if p["id"] == meta["resolve"]["root"])
    used = {"Apache-2.0", "CC-BY-4.0"}
    out = [
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: switchyard\n"
        f"Source: {root['repository']}\n"
        "Comment: Generated by deploy/debian/copyright.py at build time.\n"
        " The binary links the Rust crates listed below statically; their\n"
        " paths are those `cargo vendor --versioned-dirs` gives them.\n",
        "Files: *\n"
        "Copyright: the Switchyard developers\n"
        "License: Apache-2.0\n",
        "Files: geoip/geo-whois-asn-country.mmdb\n"
        "Copyright: Number Resource Organization (NRO) and the Regional Internet\n"
        " Registries (WHOIS and ASN data), GeoFeed publishers; compiled by\n"
        " ip-location-db (https://github.com/sapics/ip-location-db)\n"
        "License: CC-BY-4.0\n"
        "Comment: Installed as /usr/share/switchyard/geoip/geo-whois-asn-country.mmdb,\n"
        " with the licence beside it. Attribution: \"This product includes\n"
        " IP-to-country data from ip-location-db, derived from NRO data,\n"
        " licensed under CC BY 4.0.\"\n",
    ]
    for pkg in linked_packages(meta):
        name, version = pkg["name"], pkg["version"]
        directory = os.path.dirname(pkg["manifest_path"])
        text, names = dep5_license(pkg["license"], name)
        used |= names
        out.append(
            f"Files: vendor/{name}-{version}/*\n"
            + field("Copyright", copyright_lines(directory, pkg["authors"], name))
            + f"License: {text}\n")
        if name in BUNDLED_C:
            files, licence_file, licence = BUNDLED_C[name]
            holders = copyright_lines(directory, [], name)
            licence_path = os.path.join(directory, licence_file)
            with open(licence_path, encoding="utf-8") as f:
                holders = [re.sub(r"^copyright\s*(\(c\)|©)?\s*", "", line.strip(), flags=re.I)
                           for line in f if COPYRIGHT_LINE.match(line)] or holders
            used.add(licence)
            out.append(
                f"Files: vendor/{name}-{version}/{files}\n"
                + field("Copyright", holders)
                + f"License: {licence}\n")
    for name in sorted(used):
        if name in COMMON:
            out.append(
                f"License: {name}\n"
                f" On Debian systems, the complete text of the {name} licence\n"
                f" can be found in /usr/share/common-licenses/{name}.\n")
            continue
        if name == "Apache-2.0-with-LLVM-exception":
            out.append(
                f"License: {name}\n"
                " The Apache License 2.0 (/usr/share/common-licenses/Apache-2.0)\n"
                " with the LLVM exception:\n .\n"
                + license_text(os.path.join(TEXTS, "LLVM-exception")))
            continue
        path = os.path.join(REPO, "geoip", "LICENSE-CC-BY-4.0.txt") if name == "CC-BY-4.0" \
            else os.path.join(TEXTS, name)
        if not os.path.isfile(path):
            users = [p["name"] for p in linked_packages(meta)
                     if name in dep5_license(p["license"], p["name"])[1]]
            sys.exit(f"copyright.py: no text for licence {name} (used by {', '.join(users)}): "
                     f"add it as deploy/debian/licenses/{name}")
        out.append(f"License: {name}\n" + license_text(path))
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write("\n".join(out))


if __name__ == "__main__":
    main()
