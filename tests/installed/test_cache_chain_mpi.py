"""The cache chain's MPI levels (the mpi venv: mpi4py from PyPI, Debian's Open MPI): 4 ranks on
this machine (mpirun --oversubscribe), each with a local cache of its own. With the chain every key
is compiled once per job, whichever rank gets it; without it every rank compiles everything."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

# Resolved: Open MPI finds its prefix from its own path, and /bin/mpirun (merged /usr) gives "/".
MPIRUN = shutil.which("mpirun") and os.path.realpath(shutil.which("mpirun"))
pytestmark = pytest.mark.skipif(not MPIRUN, reason="mpirun is not installed (./tools/bazel installs openmpi-bin)")
RANKS = 4
KEYS = 5

SCRIPT = r"""
import json, os, sys, time
from mpi4py import MPI
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
os.environ["PROTEUS_CACHE_DIR"] = os.path.join(sys.argv[1], "rank%d" % rank)  # no two ranks share one
import proteus
mode = sys.argv[2]
results, error = [], None
started = time.monotonic()
if mode == "kill" and rank == 1:  # dies while compiling (holding the key's lease, if it got it)
    import threading
    threading.Timer(0.3, lambda: os.kill(os.getpid(), 9)).start()
try:
    for k in range(KEYS):
        src = '#include <cmath>\nextern "C" double f(double x) { return std::pow(x, %d) + %d; }' % (k + 2, k)
        results.append(proteus.compile(src).get_function("f", ...)(2.0))
except proteus.CompileError as e:
    error = str(e)
seconds = time.monotonic() - started
report = {"rank": rank, "results": results, "error": error, "seconds": seconds,
          "runs": proteus.backend_info()["frontend_runs"], "levels": proteus.cache_info()["levels"]}
everyone = comm.gather(report, root=0)
if rank == 0:
    print(json.dumps(everyone))
""".replace("KEYS", str(KEYS))
EXPECTED = [2.0 ** (k + 2) + k for k in range(KEYS)]


def mpirun(tmp_path, mode, chain, timeout=240, **env):
    script = tmp_path / "ranks.py"
    script.write_text(SCRIPT)
    full = dict(os.environ, PROTEUS_OBJECT_CACHE_CHAIN=chain, OMPI_MCA_rmaps_base_oversubscribe="1", **env)
    if os.geteuid() == 0:  # containers and CI machines run as root
        full.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    started = time.monotonic()
    res = subprocess.run([MPIRUN, "--oversubscribe", "-np", str(RANKS), sys.executable, str(script), str(tmp_path), mode],
                         capture_output=True, text=True, env=full, timeout=timeout)
    res.seconds = time.monotonic() - started
    return res


def reports(res):
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("level", ["mpi-remote-lookup", "mpi-local-lookup"])
def test_each_key_is_compiled_once_per_job(tmp_path, level):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o700)
    ranks = reports(mpirun(tmp_path, "run", f"storage,{level}", PROTEUS_MPI_CACHE_DIR=str(shared)))
    assert [r["results"] for r in ranks] == [EXPECTED] * RANKS
    assert sum(r["runs"] for r in ranks) == KEYS, [r["runs"] for r in ranks]  # one compile per key, job-wide
    for r in ranks:
        mpi = {lv["name"]: lv for lv in r["levels"]}[level]
        assert mpi["errors"] == 0 and mpi["rejected"] == 0, mpi
        assert f"rank {r['rank']} of {RANKS}" in mpi["description"]
    if level == "mpi-local-lookup":  # rank 0 wrote every entry into the shared directory
        assert len(list(shared.glob("*.pobj"))) >= KEYS
    # Without the chain, every rank compiles every key.
    (tmp_path / "alone").mkdir()
    alone = reports(mpirun(tmp_path / "alone", "run", "storage"))
    assert [r["results"] for r in alone] == [EXPECTED] * RANKS
    assert sum(r["runs"] for r in alone) == KEYS * RANKS


def test_a_missing_shared_directory_is_a_clear_error(tmp_path):
    ranks = reports(mpirun(tmp_path, "run", "storage,mpi-local-lookup", PROTEUS_MPI_CACHE_DIR=str(tmp_path / "nope")))
    for r in ranks:
        assert r["results"] == [] and "PROTEUS_MPI_CACHE_DIR=" + str(tmp_path / "nope") in r["error"]
        assert "create it (mode 700) on a filesystem every rank reads" in r["error"]
    unset = reports(mpirun(tmp_path, "run", "storage,mpi-local-lookup"))
    assert all("mpi-local-lookup needs PROTEUS_MPI_CACHE_DIR" in r["error"] for r in unset)


def test_a_rank_killed_mid_run_ends_the_job_in_bounded_time(tmp_path):
    res = mpirun(tmp_path, "kill", "storage,mpi-remote-lookup", timeout=120, PROTEUS_MPI_CACHE_TIMEOUT_MS="5000")
    # Open MPI ends the job when a rank dies; no rank waits forever for the dead one's compile.
    assert res.returncode != 0 and res.seconds < 90, (res.returncode, res.seconds)


def test_one_rank_alone_needs_no_peers(tmp_path):
    """A program started without mpirun is a job of one rank: the chain works the same."""
    script = tmp_path / "ranks.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PROTEUS_OBJECT_CACHE_CHAIN="storage,mpi-remote-lookup")
    res = subprocess.run([sys.executable, str(script), str(tmp_path), "run"], capture_output=True, text=True, env=env,
                         timeout=120)
    (only,) = reports(res)
    assert only["results"] == EXPECTED and only["runs"] == KEYS
