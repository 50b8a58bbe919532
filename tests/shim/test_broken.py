"""Broken backend distributions: clear ImportErrors naming the distribution and the problem."""

import pytest

CUDA_DIST = "proteus-python-backend-cuda12-llvm22"

# what the error must say about each kind of breakage (besides the distribution's name)
PROBLEM_TEXT = {
    "entry_point_raises": ["get_backend exploded", "entry point"],
    "package_import_fails": ["backend package is broken", "entry point"],
    "get_backend_missing_key": ["'priority'"],
    "kind_mismatch": ["'other'"],
    "manifest_missing_key": ["lacks id"],
    "module_lacks_api": ["is_runtime_compatible"],
    "native_import_fails": ["proteus_backend_cuda._proteus", "libLLVM.so.22"],
    "version_mismatch": ["9.9.9", "differs"],
}
ALL_BROKEN = sorted(PROBLEM_TEXT)


def _assert_names_problem(message: str, broken: str):
    assert CUDA_DIST in message, message
    for text in PROBLEM_TEXT[broken]:
        assert text in message, f"{text!r} not in {message!r}"


@pytest.mark.parametrize("broken", ALL_BROKEN)
def test_forced_kind_names_distribution_and_problem(fake_env, broken):
    fake_env.add("host")
    fake_env.add("cuda", broken=broken, runtime_compatible=True)
    res = fake_env.outcome("proteus.compile", env={"PROTEUS_BACKEND_KIND": "cuda"})
    assert res["ok"] is False
    assert res["error"] == "ImportError"
    _assert_names_problem(res["message"], broken)


@pytest.mark.parametrize("broken", ALL_BROKEN)
def test_forced_variant_names_distribution_and_problem(fake_env, broken):
    fake_env.add("host")
    fake_env.add("cuda", broken=broken, runtime_compatible=True)
    res = fake_env.outcome("proteus.compile", env={"PROTEUS_BACKEND_VARIANT": "cuda12-llvm22"})
    assert res["ok"] is False
    assert res["error"] == "ImportError"
    _assert_names_problem(res["message"], broken)


@pytest.mark.parametrize("broken", [b for b in ALL_BROKEN if b != "native_import_fails"])
def test_healthy_backend_still_works_when_another_is_broken(fake_env, broken):
    # the broken cuda backend would win (priority 30, runtime-compatible) if it were healthy
    fake_env.add("host")
    fake_env.add("cuda", broken=broken, runtime_compatible=True)
    r = fake_env.run_py("""
        import json, proteus
        print(json.dumps([proteus.available_backends(), proteus.available_backend_variants(),
                          proteus.active_backend, proteus.compile("q")[1]]))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == '[["host"], ["host-llvm22"], "host", "host"]'


def test_skipped_broken_backend_is_warned_about(fake_env):
    fake_env.add("host")
    fake_env.add("cuda", broken="version_mismatch", runtime_compatible=True)
    r = fake_env.run_py("""
        import warnings, proteus
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            proteus.compile
        for w in caught:
            print(w.category.__name__, w.message)
    """)
    assert r.returncode == 0, r.stderr
    assert "RuntimeWarning" in r.stdout
    assert CUDA_DIST in r.stdout and "9.9.9" in r.stdout


def test_native_import_failure_is_not_locked(fake_env):
    # a failed native load must not lock the process onto the broken backend
    fake_env.add("host")
    fake_env.add("cuda", broken="native_import_fails", runtime_compatible=True)
    out = fake_env.run_json("""
        import json, os, proteus
        try:
            proteus.compile
            first = None
        except ImportError as exc:
            first = str(exc)
        locked = proteus._backend.is_locked()
        os.environ["PROTEUS_BACKEND_KIND"] = "host"
        print(json.dumps({"first": first, "locked": locked, "then": proteus.compile("p")[1]}))
    """)
    assert out["first"] is not None and CUDA_DIST in out["first"] and "libLLVM.so.22" in out["first"]
    assert out["locked"] is False
    assert out["then"] == "host"


def test_only_broken_backends_is_a_clear_import_error(fake_env):
    fake_env.add("cuda", broken="manifest_missing_key")
    fake_env.add("rocm", broken="entry_point_raises")
    res = fake_env.outcome("proteus.compile")
    assert res["error"] == "ImportError"
    assert "No usable Proteus backend" in res["message"]
    assert CUDA_DIST in res["message"] and "lacks id" in res["message"]
    assert "proteus-python-backend-rocm72" in res["message"] and "get_backend exploded" in res["message"]
    assert fake_env.outcome("proteus.available_backends()") == {"ok": True, "value": []}


def test_version_mismatch_suggests_matching_install(fake_env):
    import proteus

    fake_env.add("host", broken="version_mismatch")
    res = fake_env.outcome("proteus.compile", env={"PROTEUS_BACKEND_KIND": "host"})
    assert res["error"] == "ImportError"
    assert f"proteus-python-backend-host-llvm22=={proteus.__version__}" in res["message"]
    assert "9.9.9" in res["message"]

