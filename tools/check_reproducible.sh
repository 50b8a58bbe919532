#!/usr/bin/env bash
# Reproducibility: builds the given targets (default //:dists) in this checkout and again in a
# copy of it at another path with a fresh output base and no disk cache, then compares the sha256
# of every wheel and sdist. Usage: tools/check_reproducible.sh [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("${@:-//:dists}")
other="$(mktemp -d /tmp/proteus-repro.XXXXXX)"
cleanup() {
  (cd "$other/checkout" 2>/dev/null && ./tools/bazel --output_base="$other/base" shutdown >/dev/null 2>&1) || true
  rm -rf "$other"
}
trap cleanup EXIT

# The same tree (tracked files as they are now), somewhere else.
mkdir "$other/checkout"
git ls-files -z | xargs -0 cp --parents -t "$other/checkout"

dist_sums() {  # $1: checkout, $2: bazel startup options; prints "sha256  name" per output
  (cd "$1" && ./tools/bazel $2 build --disk_cache= --show_result=1000 "${targets[@]}" 2>&1) |
    grep -E '^  .*\.(whl|tar\.gz)$' | sed 's/^  //' | grep -v -- '-linux_x86_64\.whl$' |
    while read -r f; do (cd "$1" && sha256sum "$f"); done |
    awk '{ n = split($2, p, "/"); print $1 "  " p[n] }' | sort -k2
}

first="$(dist_sums "$PWD" "")"
second="$(dist_sums "$other/checkout" "--output_base=$other/base")"
echo "$first"
[[ -n "$first" ]] || { echo "no wheels or sdists among the outputs of ${targets[*]}" >&2; exit 1; }
if [[ "$first" != "$second" ]]; then
  echo "NOT reproducible: the copy at $other/checkout built different bytes:" >&2
  diff <(echo "$first") <(echo "$second") >&2 || true
  exit 1
fi
echo "reproducible: $(wc -l <<<"$first") distribution(s) identical across two checkouts and output bases"
