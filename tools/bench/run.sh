#!/usr/bin/env bash
# Builds the wheels, installs them with the anchors into a fresh venv, prints the benchmark table.
set -euo pipefail
cd "$(dirname "$0")/../.."
./tools/bazel build //:wheels
venv="${BENCH_VENV:-/tmp/proteus-bench-venv}"
python3 -m venv --clear "$venv"
"$venv/bin/pip" install -q bazel-bin/proteus/proteus_python-*.whl \
  bazel-bin/backends/host/proteus_python_backend_host_llvm22-*-manylinux_*.whl
"$venv/bin/pip" install -q -r tools/bench/requirements.txt || echo "some anchors did not install; they are reported as missing"
cd "$(mktemp -d)" && exec "$venv/bin/python" "$OLDPWD/tools/bench/anchors.py"
