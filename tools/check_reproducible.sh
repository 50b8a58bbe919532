#!/usr/bin/env bash
# Builds the given targets in this checkout's output base and in a fresh one, then compares the
# sha256 of every wheel they produce. Usage: tools/check_reproducible.sh TARGET...
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("${@:-//:wheels}")
other="$(mktemp -d /tmp/proteus-repro.XXXXXX)"
trap './tools/bazel --output_base="$other/base" shutdown >/dev/null 2>&1 || true; rm -rf "$other"' EXIT

wheel_sums() {  # $1: bazel startup option(s), $2: symlink prefix; prints "sha256  name" per wheel
  ./tools/bazel $1 build --symlink_prefix="$2" --show_result=1000 --disk_cache= "${targets[@]}" 2>&1 |
    sed -n 's|^  \(.*\.whl\)$|\1|p' |
    while read -r f; do sha256sum "$f"; done |
    awk '{ n = split($2, p, "/"); print $1 "  " p[n] }' | sort -k2
}

first="$(wheel_sums "" "bazel-")"
second="$(wheel_sums "--output_base=$other/base" "$other/")"
echo "$first"
[[ -n "$first" ]] || { echo "no wheels found among the outputs of ${targets[*]}" >&2; exit 1; }
if [[ "$first" != "$second" ]]; then
  echo "NOT reproducible: the second output base built different bytes:" >&2
  diff <(echo "$first") <(echo "$second") >&2 || true
  exit 1
fi
echo "reproducible: $(wc -l <<<"$first") wheel(s) identical across two output bases"
