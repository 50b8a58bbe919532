#!/usr/bin/env bash
# The C++ toolchain is part of every C++ action key (tools/bazel, PROTEUS_CC_TOOLCHAIN): the same
# toolchain gives the same keys; one package version changed (a dpkg-query that reports another
# libstdc++-12-dev) gives other keys for every compile. Usage: tools/check_toolchain_digest.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Compiles only: Bazel 4.2.3's link actions (CppLink) do not take --action_env (README, "Left").
query='mnemonic("CppCompile", //cc:glibc_compat + //tests:fake_driver/libfake_driver.so + //cc:engine)'
keys() {
  ./tools/bazel aquery "$query" --output=jsonproto 2>/dev/null |
    python3 -c 'import json,sys; print("\n".join(sorted(a["actionKey"] for a in json.load(sys.stdin)["actions"])))'
}
fake="$(mktemp -d)"
trap 'rm -rf "$fake"' EXIT
cat >"$fake/dpkg-query" <<'SH'
#!/bin/sh
/usr/bin/dpkg-query "$@" | sed 's/^libstdc++-12-dev=.*/libstdc++-12-dev=0:changed-for-the-test/'
SH
chmod +x "$fake/dpkg-query"

first="$(keys)"; again="$(keys)"; changed="$(PATH="$fake:$PATH" keys)"
[[ -n "$first" ]] || { echo "no C++ actions found for $query" >&2; exit 1; }
[[ "$first" == "$again" ]] || { echo "C++ action keys differ between two runs with one toolchain" >&2; exit 1; }
if comm -12 <(echo "$first") <(echo "$changed") | grep -q .; then
  echo "NOT keyed on the toolchain: some C++ action keys survived a changed libstdc++-12-dev version" >&2
  exit 1
fi
echo "toolchain-keyed: $(wc -l <<<"$first") C++ actions, all keys change with one package version"
