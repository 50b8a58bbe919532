"""Compiles per key and wall time of an MPI job with and without the cache chain (README, "Sharing
compiled code across ranks and nodes"). Needs mpirun (Open MPI) and mpi4py next to the installed
wheels (pip install 'proteus-python[mpi]'). Each rank has a cold local cache of its own, as ranks on
different nodes would.

    python tools/bench/cache_chain.py [--ranks 4] [--keys 12]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

RANK_SCRIPT = r"""
import json, os, sys, time
from mpi4py import MPI
comm = MPI.COMM_WORLD
os.environ["PROTEUS_CACHE_DIR"] = os.path.join(sys.argv[1], "rank%d" % comm.Get_rank())
import proteus
comm.Barrier()
started = time.monotonic()
for k in range(int(sys.argv[2])):
    src = "#include <cmath>\n#include <vector>\n" \
          "extern \"C\" double f(double x) { std::vector<double> v(8, x); double s = 0; " \
          "for (double d : v) s += std::pow(d, %d); return s; }" % (k + 2)
    proteus.compile(src).get_function("f", ...)(1.5)
seconds = time.monotonic() - started
report = comm.gather({"runs": proteus.backend_info()["frontend_runs"], "seconds": seconds}, root=0)
if comm.Get_rank() == 0:
    print(json.dumps(report))
"""


def job(ranks, keys, chain):
    work = tempfile.mkdtemp(prefix="proteus-chain-bench-")
    try:
        os.mkdir(os.path.join(work, "shared"), 0o700)
        script = os.path.join(work, "rank.py")
        with open(script, "w") as f:
            f.write(RANK_SCRIPT)
        env = dict(os.environ, PROTEUS_OBJECT_CACHE_CHAIN=chain, PROTEUS_MPI_CACHE_DIR=os.path.join(work, "shared"))
        if os.geteuid() == 0:
            env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        started = time.monotonic()
        res = subprocess.run(["mpirun", "--oversubscribe", "-np", str(ranks), sys.executable, script, work, str(keys)],
                             capture_output=True, text=True, env=env, timeout=1800)
        wall = time.monotonic() - started
        if res.returncode != 0:
            sys.exit(f"mpirun failed ({res.returncode}):\n{res.stderr[-3000:]}")
        report = json.loads(res.stdout.strip().splitlines()[-1])
        return sum(r["runs"] for r in report), max(r["seconds"] for r in report), wall
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", type=int, default=4)
    parser.add_argument("--keys", type=int, default=12)
    args = parser.parse_args()
    print(f"{args.ranks} ranks, {args.keys} distinct C++ functions (<cmath>, <vector>), cold caches")
    print(f"{'PROTEUS_OBJECT_CACHE_CHAIN':34} {'compiles':>8} {'per key':>8} {'slowest rank s':>15} {'mpirun s':>9}")
    base = None
    for chain in ("storage", "storage,mpi-remote-lookup", "storage,mpi-local-lookup"):
        compiles, slowest, wall = job(args.ranks, args.keys, chain)
        base = base or slowest
        print(f"{chain:34} {compiles:8d} {compiles / args.keys:8.2f} {slowest:15.2f} {wall:9.2f}"
              f"  ({slowest / base:.2f}x the slowest rank without the chain)")


if __name__ == "__main__":
    main()
