#!/usr/bin/env python3
"""Print the highest `rust-version` among the crate's normal dependencies (all features).

`cargo metadata` gives every package's declared `rust-version`; we walk the resolve graph from
`mcp-auth` along normal and build edges only (dev-dependencies do not reach users). With
`--check`, exit non-zero when Cargo.toml declares a lower `rust-version` than that.
"""
import json
import subprocess
import sys


def version_key(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


meta = json.loads(
    subprocess.check_output(
        ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"]
    )
)
packages = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = meta["resolve"]["root"]

seen, stack = set(), [root]
while stack:
    node = nodes[stack.pop()]
    for dep in node["deps"]:
        kinds = {k["kind"] for k in dep["dep_kinds"]}
        if kinds & {None, "build"} and dep["pkg"] not in seen:
            seen.add(dep["pkg"])
            stack.append(dep["pkg"])

best = max(
    ((packages[i].get("rust_version") or "0", packages[i]["name"]) for i in seen),
    key=lambda v: version_key(v[0]),
)
declared = packages[root].get("rust_version") or "0"
print(f"highest dependency rust-version: {best[0]} ({best[1]}); declared: {declared}")
if "--check" in sys.argv and version_key(declared) < version_key(best[0]):
    sys.exit("Cargo.toml rust-version is lower than a dependency's; raise it")
