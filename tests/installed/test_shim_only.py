"""The shim wheel alone in a clean venv: zero-backend behaviour, metadata, the report."""

import json
import subprocess
import sys
from importlib import metadata

import pytest

import proteus


def test_no_backends():
    assert proteus.available_backends() == []
    assert proteus.available_backend_variants() == []


def test_native_names_raise_the_install_hint():
    with pytest.raises(ImportError) as err:
        proteus.compile
    msg = str(err.value)
    assert msg.startswith("No Proteus backend is installed")
    for dist in ("proteus-python-backend-host-llvm22", "proteus-python-backend-cuda12-llvm22",
                 "proteus-python-backend-rocm72"):
        assert dist in msg
    assert "https://" in msg


def test_metadata():
    dist = metadata.distribution("proteus-python")
    assert dist.version == proteus.__version__
    assert dist.metadata["Requires-Python"] == ">=3.10"
    assert dist.metadata["Summary"]
    assert dist.metadata["License-Expression"] == "Apache-2.0" and dist.metadata["Metadata-Version"] == "2.4"
    files = {str(f) for f in dist.files}
    assert "proteus/__init__.py" in files and "proteus/_version.py" in files
    assert {"proteus/py.typed", "proteus/__init__.pyi"} <= files
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in files)


@pytest.mark.parametrize("args", [[], ["--json"]])
def test_report(args):
    res = subprocess.run([sys.executable, "-m", "proteus", *args], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    if args:
        data = json.loads(res.stdout)
        assert data["backends"] == [] and "error" in data["selection"]
    else:
        assert "(none installed)" in res.stdout and proteus.__version__ in res.stdout
