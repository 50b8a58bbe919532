"""The installed-wheel harness (ARCHITECTURE 7): built wheels -> clean venvs -> tests run inside them.

Each venv is made with `python -m venv` from one target interpreter, gets the test tools from the
hash-pinned wheelhouse, and the product wheels with `pip install --no-index` from the built files
only. Then pytest runs tests/installed/<files> with that venv's interpreter, from an empty
directory, so nothing of the source tree can be imported by accident.

Adding a backend = one entry in VENVS.
"""

import configparser
import email.parser
import glob
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

HERE = Path(os.path.abspath(__file__)).parent
SHIM = "proteus-python"
HOST = "proteus-python-backend-host-llvm22"
CUDA = "proteus-python-backend-cuda12-llvm22"
ROCM = "proteus-python-backend-rocm72"
TEST_TOOLS = ["pytest", "numpy", "llvmlite"]
CUDA_TOOLKIT = ["nvidia-cuda-runtime-cu12", "nvidia-cuda-nvcc-cu12", "nvidia-cuda-cccl-cu12"]  # the [toolkit] extra

# name -> (built distributions to install, packages from the test wheelhouse, test files under tests/installed/)
VENVS = {
    "shim-only": ([SHIM], TEST_TOOLS, ["test_shim_only.py"]),
    "host": ([SHIM, HOST], TEST_TOOLS + ["mypy"], ["test_host_backend.py", "test_cache.py", "test_specialize.py",
                                                   "test_bad_input.py", "test_threads.py", "test_coexistence.py",
                                                   "test_typing.py", "test_containment.py", "test_fuzz.py",
                                                   "test_signatures.py", "test_everyday.py", "test_link.py",
                                                   "test_mlir.py", "test_cache_chain.py", "test_jit_memory.py"]),
    # The cache chain's MPI levels: mpi4py (the shim's [mpi] extra) on Debian's Open MPI.
    "mpi": ([SHIM, HOST], TEST_TOOLS + ["mpi4py"], ["test_cache_chain_mpi.py"]),
    "cuda": ([SHIM, HOST, CUDA], TEST_TOOLS + CUDA_TOOLKIT, ["test_cuda_backend.py", "test_fake_driver.py",
                                                              "test_mlir_gpu.py"]),
    "rocm": ([SHIM, HOST, ROCM], TEST_TOOLS, ["test_rocm_backend.py", "test_mlir_gpu.py"]),
}


def pythons():
    found = [p for p in os.environ.get("PROTEUS_TEST_PYTHONS", "").split(",") if p]
    return found or [sys.executable]


def runfiles_root() -> Path:
    return Path(os.getcwd())


def built_wheels() -> dict:
    """distribution -> {python tag -> wheel path} for every wheel in the runfiles."""
    wheels = {}
    for path in glob.glob(str(runfiles_root() / "**" / "*.whl"), recursive=True):
        if "test_wheelhouse" in path:
            continue
        name, _version, _build, tags = parse_wheel_filename(os.path.basename(path))
        if any(t.platform == "linux_x86_64" for t in tags):  # the raw (unrepaired) wheels are not shipped
            continue
        for tag in tags:
            wheels.setdefault(str(name), {})[tag.interpreter] = path
    return wheels


def wheelhouse() -> str:
    hits = glob.glob(str(runfiles_root() / "**" / "test_wheelhouse"), recursive=True)
    assert hits, "the test wheelhouse (@proteus_py//:test_wheelhouse) is missing from the runfiles"
    return hits[0]


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n{res.stdout[-6000:]}\n{res.stderr[-6000:]}")
    return res


def make_venv(python: str, where: Path, dists: list, tools: list) -> Path:
    run([python, "-m", "venv", "--clear", str(where)])
    vpy = where / "bin" / "python"
    tag = run([str(vpy), "-c", "import sys; print('cp%d%d' % sys.version_info[:2])"]).stdout.strip()
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONFIG_FILE=os.devnull, PIP_NO_INPUT="1")
    env.pop("PYTHONPATH", None)
    run([str(vpy), "-m", "pip", "install", "-q", "--no-index", "--find-links", wheelhouse()] + tools, env=env)
    wheels = built_wheels()
    files = []
    for dist in dists:
        by_tag = wheels.get(str(canonicalize_name(dist)), {})
        wheel = by_tag.get(tag) or by_tag.get("py3")
        assert wheel, f"no built wheel of {dist} for {tag}; built: {wheels}"
        files.append(wheel)
    run([str(vpy), "-m", "pip", "install", "-q", "--no-index", "--no-deps"] + files, env=env)
    run([str(vpy), "-m", "pip", "check"], env=env)
    return vpy


@pytest.mark.parametrize("python", pythons())
@pytest.mark.parametrize("venv_name", list(VENVS))
def test_installed(python, venv_name, tmp_path):
    dists, tools, files = VENVS[venv_name]
    vpy = make_venv(python, tmp_path / "venv", dists, tools)
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PROTEUS_", "RUNFILES", "TEST_"))}
    env.update(HOME=str(tmp_path / "home"),
               PYTHONDONTWRITEBYTECODE="1",
               FAKE_DRIVER_DIR=str(fake_driver_dir(tmp_path / "fake_driver")),
               PROTEUS_README=str(runfile("README.md").resolve()))
    cmd = [str(vpy), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--rootdir", str(workdir)]
    cmd += [str(HERE / "installed" / f) for f in files]
    res = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    print(res.stdout[-20000:])
    print(res.stderr[-5000:], file=sys.stderr)
    assert res.returncode == 0, f"tests in the {venv_name} venv ({python}) failed:\n{res.stdout[-8000:]}\n{res.stderr[-3000:]}"


def fake_driver_dir(where: Path) -> Path:
    """A directory where the fake driver is libcuda.so.1 and libamdhip64.so.7 (tests put it on LD_LIBRARY_PATH)."""
    where.mkdir()
    library = runfile("libfake_driver.so").resolve()
    for name in ("libcuda.so.1", "libamdhip64.so.7"):
        (where / name).symlink_to(library)
    return where


def runfile(path: str) -> Path:
    hits = glob.glob(str(runfiles_root() / "**" / path), recursive=True)
    assert hits, f"{path} is missing from the runfiles"
    return Path(hits[0])


def test_pip_install_from_the_generated_index(tmp_path):
    """tools/make_index.py over the built wheels; pip resolves the backend and the shim from it."""
    dist = tmp_path / "dist"
    dist.mkdir()
    for by_tag in built_wheels().values():
        for wheel in by_tag.values():
            shutil.copy(wheel, dist)
    index = tmp_path / "index"
    run([sys.executable, str(runfile("tools/make_index.py")), str(dist), str(index)])
    test_page = (index / "test" / "proteus-python-backend-host-llvm22" / "index.html").read_text()
    assert "#sha256=" in test_page and 'data-requires-python="&gt;=3.10"' in test_page
    released = (index / "simple" / "index.html").read_text()
    assert ("proteus-python-backend-host-llvm22" in released) == (".dev" not in test_page and "rc" not in test_page)
    venv = tmp_path / "venv"
    run([pythons()[0], "-m", "venv", str(venv)])
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONFIG_FILE=os.devnull)
    env.pop("PYTHONPATH", None)
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--pre", "--index-url", (index / "test").as_uri(),
         "proteus-python-backend-host-llvm22"], env=env)
    code = ("import proteus; print(proteus.compile('extern \"C\" int plus1(int x) { return x + 1; }')"
            ".get_function('plus1', restype=proteus.i32, argtypes=[proteus.i32])(41))")
    assert run([str(venv / "bin" / "python"), "-c", code], env=env, cwd=tmp_path).stdout.strip() == "42"


def test_sdist_rebuilds_the_shim_wheel(tmp_path):
    """pip builds a wheel from //proteus:sdist (setuptools, offline) with the same files and metadata."""
    sdist = runfile("proteus/proteus_python-*.tar.gz")
    ours = built_wheels()["proteus-python"]["py3"]
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_CONFIG_FILE=os.devnull)
    env.pop("PYTHONPATH", None)
    out = tmp_path / "rebuilt"
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-cache-dir", "--no-deps", "--no-index", "--find-links", wheelhouse(),
         "-w", str(out), str(sdist)], env=env)
    (rebuilt,) = list(out.glob("*.whl"))
    assert rebuilt.name == os.path.basename(ours)

    def contents(path):
        with zipfile.ZipFile(path) as zf:
            files = {n: zf.read(n) for n in zf.namelist() if not n.endswith("/") and ".dist-info/" not in n}
            meta = email.parser.Parser().parsestr(
                zf.read(next(n for n in zf.namelist() if n.endswith("METADATA"))).decode())
            eps = zf.read(next(n for n in zf.namelist() if n.endswith("entry_points.txt"))).decode()
            licenses = sorted(n.split("/licenses/", 1)[1] for n in zf.namelist() if ".dist-info/licenses/" in n)
        fields = {k: sorted(meta.get_all(k) or []) for k in ("Metadata-Version", "Name", "Version", "Summary",
                                                             "Requires-Python", "Requires-Dist", "License-Expression",
                                                             "License-File", "Classifier", "Project-URL")}
        fields["licenses"] = licenses
        return files, fields, configparser_sections(eps)

    assert contents(rebuilt) == contents(ours)


def configparser_sections(text: str) -> dict:
    parser = configparser.ConfigParser()
    parser.read_string(text)
    return {s: dict(parser[s]) for s in parser.sections()}
