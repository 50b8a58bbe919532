"""`python -m proteus [--json]`: the environment report."""

import json

REPORT_KEYS = {"proteus_version", "python", "executable", "platform", "machine", "backends", "selection",
               "environment"}


def _json_report(fake_env, env=None):
    r = fake_env.run_module("--json", env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_text_report_shows_backends_selection_and_reason(fake_env):
    import proteus

    fake_env.add("host")
    fake_env.add("cuda")
    r = fake_env.run_module()
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"proteus-python {proteus.__version__}" in out
    assert "proteus-python-backend-host-llvm22" in out and "proteus-python-backend-cuda12-llvm22" in out
    assert "host-llvm22" in out and "cuda12-llvm22" in out
    assert "not runtime-compatible" in out  # cuda, whose driver library is missing
    assert "selection: host (variant host-llvm22), because: highest-priority runtime-compatible backend (host)" in out


def test_text_report_reason_for_forced_kind(fake_env):
    fake_env.add("host")
    fake_env.add("cuda")
    r = fake_env.run_module(env={"PROTEUS_BACKEND_KIND": "cuda"})
    assert r.returncode == 0, r.stderr
    assert "selection: cuda (variant cuda12-llvm22), because: PROTEUS_BACKEND_KIND=cuda" in r.stdout
    assert "PROTEUS_BACKEND_KIND=cuda" in r.stdout.split("environment:")[1]


def test_json_report(fake_env):
    import proteus

    fake_env.add("host")
    fake_env.add("cuda", runtime_compatible=True)
    data = _json_report(fake_env)
    assert REPORT_KEYS <= set(data)
    assert data["proteus_version"] == proteus.__version__
    assert data["environment"] == {}
    by_kind = {b["kind"]: b for b in data["backends"]}
    assert set(by_kind) == {"host", "cuda"}
    assert by_kind["cuda"] == {"kind": "cuda", "distribution": "proteus-python-backend-cuda12-llvm22",
                               "version": proteus.__version__, "priority": 30, "healthy": True,
                               "variants": ["cuda12-llvm22"], "runtime_compatible": True}
    assert by_kind["host"]["priority"] == 10 and by_kind["host"]["runtime_compatible"] is True
    assert data["selection"] == {"kind": "cuda", "variant": "cuda12-llvm22",
                                 "reason": "highest-priority runtime-compatible backend (cuda)"}


def test_json_report_environment(fake_env):
    fake_env.add("host")
    data = _json_report(fake_env, env={"PROTEUS_BACKEND_VARIANT": "host-llvm22"})
    assert data["environment"]["PROTEUS_BACKEND_VARIANT"] == "host-llvm22"
    assert data["selection"]["reason"] == "PROTEUS_BACKEND_VARIANT=host-llvm22"


def test_broken_backends_are_reported(fake_env):
    fake_env.add("host")
    fake_env.add("cuda", broken="version_mismatch")
    fake_env.add("rocm", broken="manifest_missing_key")
    r = fake_env.run_module()
    assert r.returncode == 0, r.stderr
    broken_lines = [line for line in r.stdout.splitlines() if "BROKEN" in line]
    assert len(broken_lines) == 2
    assert any("proteus-python-backend-cuda12-llvm22" in line and "9.9.9" in line for line in broken_lines)
    assert any("proteus-python-backend-rocm72" in line and "lacks id" in line for line in broken_lines)
    assert "selection: host" in r.stdout

    data = _json_report(fake_env)
    by_kind = {b["kind"]: b for b in data["backends"]}
    assert by_kind["cuda"]["healthy"] is False and "9.9.9" in by_kind["cuda"]["problem"]
    assert by_kind["rocm"]["healthy"] is False and "lacks id" in by_kind["rocm"]["problem"]
    assert by_kind["host"]["healthy"] is True
    assert data["selection"]["kind"] == "host"


def test_report_with_failing_selection(fake_env):
    fake_env.add("host")
    r = fake_env.run_module(env={"PROTEUS_BACKEND_KIND": "rocm"})
    assert r.returncode == 0, r.stderr
    assert "selection: none" in r.stdout
    assert "PROTEUS_BACKEND_KIND='rocm' is not installed" in r.stdout
    data = _json_report(fake_env, env={"PROTEUS_BACKEND_KIND": "rocm"})
    assert "is not installed" in data["selection"]["error"]


def test_report_does_not_load_native_code(fake_env):
    # the report must work even where the native module cannot be loaded
    fake_env.add("host", broken="native_import_fails")
    r = fake_env.run_module()
    assert r.returncode == 0, r.stderr
    assert "selection: host (variant host-llvm22)" in r.stdout


def test_report_without_backends(fake_env):
    r = fake_env.run_module()
    assert r.returncode == 0, r.stderr
    assert "(none installed)" in r.stdout
    assert "selection: none" in r.stdout
    assert "No Proteus backend is installed" in r.stdout
    data = _json_report(fake_env)
    assert data["backends"] == []
    assert data["selection"]["error"].startswith("No Proteus backend is installed")


def test_help_and_unknown_flags(fake_env):
    fake_env.add("host")
    shown = fake_env.run_module("--help")
    assert shown.returncode == 0 and "usage: python -m proteus [-h] [--json]" in shown.stdout
    wrong = fake_env.run_module("--jsno")
    assert wrong.returncode == 2 and "unrecognized arguments: --jsno" in wrong.stderr
