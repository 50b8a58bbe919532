#!/usr/bin/env bash
# Remote-cache check (ARCHITECTURE 5): nginx with WebDAV PUT on loopback serves as Bazel's HTTP cache.
# Build TARGETS (default //:dists) into it from one output base, then build again from a fresh
# output base (no local outputs, no disk cache) and require, from Bazel's execution log, that
# every compile, link, wheel, sdist and repair action was a remote-cache hit.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("${@:-//:dists}")

if ! command -v nginx >/dev/null; then
  if [[ "$(id -u)" != 0 ]]; then echo "check_remote_cache: needs nginx: sudo apt-get install -y nginx-light" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi

work="$(mktemp -d /tmp/proteus-remote.XXXXXX)"
port=$((20000 + RANDOM % 20000))
mkdir -p "$work/cache" "$work/body"
# Workers of a root-started nginx drop to www-data, which cannot write our private temp dir.
user_line=""
[[ "$(id -u)" == 0 ]] && user_line="user root;"
cat > "$work/nginx.conf" <<CONF
$user_line
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events {}
http {
  access_log off;
  client_body_temp_path $work/body;
  client_max_body_size 4g;
  server {
    listen 127.0.0.1:$port;
    root $work/cache;
    location / {
      dav_methods PUT;
      create_full_put_path on;
    }
  }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
cleanup() {
  for base in base1 base2; do ./tools/bazel --output_base="$work/$base" shutdown >/dev/null 2>&1 || true; done
  kill "$(cat "$work/nginx.pid" 2>/dev/null)" 2>/dev/null || true
  [[ -n "${KEEP:-}" ]] || rm -rf "$work"
}
trap cleanup EXIT

flags=(--config=remote "--remote_cache=http://127.0.0.1:$port" --disk_cache= --noshow_progress)
echo "check_remote_cache: filling the cache from output base 1"
./tools/bazel --output_base="$work/base1" build "${flags[@]}" "${targets[@]}" >"$work/build1.log" 2>&1 ||
  { cat "$work/build1.log"; exit 1; }
echo "check_remote_cache: rebuilding from a fresh output base 2"
./tools/bazel --output_base="$work/base2" build "${flags[@]}" --execution_log_json_file="$work/exec.json" \
  "${targets[@]}" >"$work/build2.log" 2>&1 || { cat "$work/build2.log"; exit 1; }

python3 - "$work/exec.json" <<'PY'
import collections, json, sys
text = open(sys.argv[1]).read()
decoder, pos, spawns = json.JSONDecoder(), 0, []
while pos < len(text):  # Bazel writes one JSON object per spawn, concatenated
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        spawns.append(obj)
checked = ("CppCompile", "CppLink", "PyWheel", "PySdist", "AuditwheelRepair", "Genrule")
hits, misses = collections.Counter(), collections.Counter()
for s in spawns:
    if s.get("mnemonic") in checked:
        (hits if s.get("remoteCacheHit") else misses)[s["mnemonic"]] += 1
print("remote-cache hits by kind:", dict(hits))
if misses or not hits:
    sys.exit(f"check_remote_cache: actions that were NOT remote-cache hits: {dict(misses) or 'no actions ran'}")
print(f"check_remote_cache: all {sum(hits.values())} compile/link/wheel/sdist/repair actions were remote-cache hits")
PY
