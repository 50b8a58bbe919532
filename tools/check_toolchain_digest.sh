#!/usr/bin/env bash
# The C++ toolchain is part of every C++ action's cache key (tools/bazel, PROTEUS_CC_TOOLCHAIN).
# Another toolchain is simulated by a dpkg-query that reports another libstdc++-12-dev version.
# - compiles take the facts through --action_env: the same toolchain gives the same action keys,
#   the other one changes every compile key (aquery);
# - links take no --action_env: they read the facts as an input file (cc/native.bzl,
#   TOOLCHAIN_FACTS). Every link lists it; and with a disk cache that holds the other toolchain's
#   link, a link under this toolchain misses (though its command and objects are the same), while
#   the other toolchain, back again, hits it.
# Usage: tools/check_toolchain_digest.sh
set -euo pipefail
cd "$(dirname "$0")/.."

binaries='kind("cc_binary|cc_test", //tests:* + //backends/host:*)'  # the extensions, the test binaries
query="mnemonic(\"CppCompile\", //cc:glibc_compat + //cc:engine + $binaries)"
links_query="mnemonic(\"CppLink\", $binaries)"  # links, not the libraries' archives (keyed by their objects)
probe=//tests:fake_driver/libfake_driver.so  # one compile, one link: cheap to rebuild
probe_output=bazel-bin/tests/fake_driver/libfake_driver.so

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"
# Only the version listing tools/bazel asks for changes; every other query gets the real answer.
cat >"$work/bin/dpkg-query" <<'SH'
#!/bin/sh
case "$*" in
  *'${Package}=${Version}'*) /usr/bin/dpkg-query "$@" | sed 's/^libstdc++-12-dev=.*/libstdc++-12-dev=0:changed-for-the-test/' ;;
  *) exec /usr/bin/dpkg-query "$@" ;;
esac
SH
chmod +x "$work/bin/dpkg-query"
other() { PATH="$work/bin:$PATH" "$@"; }

aquery() {
  ./tools/bazel aquery "${2:-$query}" --output=jsonproto 2>"$work/aquery.log" >"$1" ||
    { cat "$work/aquery.log" >&2; echo "aquery failed" >&2; exit 1; }
}
keys() { python3 -c 'import json,sys; print("\n".join(sorted(a["actionKey"] for a in json.load(open(sys.argv[1]))["actions"] if a["mnemonic"] == sys.argv[2])))' "$@"; }
fail() { echo "NOT keyed on the toolchain: $*" >&2; exit 1; }

# Grouped so that the toolchain flips only three times (each flip re-runs the repository rules
# that read PATH): this one (1, 2), the other (1, 3 fill), this one (3 miss), the other (3 hit).
# The next ./tools/bazel run states this toolchain again.

# 1. Compile keys.
aquery "$work/a.json"; aquery "$work/again.json"; aquery "$work/links.json" "$links_query"
other aquery "$work/other.json"
[[ -n "$(keys "$work/a.json" CppCompile)" ]] || { echo "no C++ actions found for $query" >&2; exit 1; }
[[ "$(keys "$work/a.json" CppCompile)" == "$(keys "$work/again.json" CppCompile)" ]] ||
  { echo "compile keys differ between two runs with one toolchain" >&2; exit 1; }
if comm -12 <(keys "$work/a.json" CppCompile) <(keys "$work/other.json" CppCompile) | grep -q .; then
  fail "some compile keys survived a changed libstdc++-12-dev version"
fi

# 2. Every link reads the facts file.
links="$(python3 - "$work/links.json" <<'PY'
import json, sys
graph = json.load(open(sys.argv[1]))
frags = {f["id"]: f for f in graph["pathFragments"]}
def path(fid):
    parts = []
    while fid:
        parts.append(frags[fid]["label"]); fid = frags[fid].get("parentId")
    return "/".join(reversed(parts))
files = {a["id"]: path(a["pathFragmentId"]) for a in graph["artifacts"]}
sets = {d["id"]: d for d in graph["depSetOfFiles"]}
def inputs(ids, seen):
    for i in ids:
        if i not in seen:
            seen.add(i); d = sets[i]
            yield from (files[a] for a in d.get("directArtifactIds", []))
            yield from inputs(d.get("transitiveDepSetIds", []), seen)
links = [a for a in graph["actions"] if a["mnemonic"] == "CppLink"]
missing = [a["primaryOutputId"] for a in links
           if not any(p.endswith("cc_toolchain_facts/toolchain_facts.txt") for p in inputs(a["inputDepSetIds"], set()))]
if missing:
    sys.exit("links without the toolchain facts among their inputs: %s" % [files[m] for m in missing])
print(len(links))
PY
)" || fail "see above"

# 3. A link cached under the other toolchain is a miss under this one, a hit under that one again.
link_cache_hit() {  # the CppLink spawn of the build just logged: "true" (cache hit) or "false"
  python3 - "$1" <<'PY'
import json, sys
text, dec, pos, spawns = open(sys.argv[1]).read(), json.JSONDecoder(), 0, []
while pos < len(text.rstrip()):
    obj, pos = dec.raw_decode(text, pos)
    spawns.append(obj)
    while pos < len(text) and text[pos].isspace():
        pos += 1
hits = [s.get("remoteCacheHit", False) for s in spawns if s.get("mnemonic") == "CppLink"]
if len(hits) != 1:
    sys.exit("expected one link in the log, found %d" % len(hits))
print(str(hits[0]).lower())
PY
}
build() {
  "$@" ./tools/bazel build --disk_cache="$work/cache" --execution_log_json_file="$work/log.json" "$probe" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; echo "building $probe failed" >&2; exit 1; }
}
rm -f "$probe_output"  # so that its link runs and fills the cache
build other; [[ "$(link_cache_hit "$work/log.json")" == false ]] || { echo "the empty disk cache had a link" >&2; exit 1; }
build env; [[ "$(link_cache_hit "$work/log.json")" == false ]] || fail "the link hit the other toolchain's cache entry"
build other; [[ "$(link_cache_hit "$work/log.json")" == true ]] || { echo "the disk cache did not serve a link it holds" >&2; exit 1; }

echo "toolchain-keyed: $(keys "$work/a.json" CppCompile | wc -l) compile keys change with one package version;" \
  "$links links read the facts, and a link misses the other toolchain's cache entry"
