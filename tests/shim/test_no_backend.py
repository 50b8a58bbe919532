"""The shim with no backend installed, and the laziness of `import proteus`."""

import pytest

DISTRIBUTION_NAMES = (
    "proteus-python-backend-host-llvm22",
    "proteus-python-backend-cuda12-llvm22",
    "proteus-python-backend-rocm72",
)

LAZINESS = """
import json, sys
import proteus
print(json.dumps({
    "scanned": proteus._backend._backends is not None,
    "locked": proteus._backend.is_locked(),
    "backend_modules": sorted(m for m in sys.modules if m.startswith("proteus_backend")),
    "native_modules": sorted(m for m in sys.modules if m.endswith("_proteus")),
}))
"""


def test_import_works_and_nothing_is_available(fake_env):
    out = fake_env.run_json("""
        import json, proteus
        print(json.dumps([proteus.available_backends(), proteus.available_backend_variants(), proteus.__version__]))
    """)
    assert out[0] == [] and out[1] == []
    assert isinstance(out[2], str) and out[2]


@pytest.mark.parametrize("statement", ["proteus.compile", "proteus.i32", "proteus.active_backend",
                                       "proteus.active_backend_variant", "proteus._backend.load_native_module()"])
def test_native_api_raises_clear_import_error(fake_env, statement):
    res = fake_env.outcome(statement)
    assert res["ok"] is False
    assert res["error"] == "ImportError"
    message = res["message"]
    assert message.startswith("No Proteus backend is installed")
    for dist in DISTRIBUTION_NAMES:
        assert dist in message
    assert "https://" in message


def test_import_error_is_catchable_as_import_error(fake_env):
    r = fake_env.run_py("""
        import proteus
        try:
            from proteus import compile
        except ImportError as exc:
            print("caught:", str(exc).splitlines()[0])
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("caught: No Proteus backend is installed")


def test_import_is_lazy_without_backends(fake_env):
    out = fake_env.run_json(LAZINESS)
    assert out == {"scanned": False, "locked": False, "backend_modules": [], "native_modules": []}


def test_import_is_lazy_with_backends(fake_env):
    fake_env.add("host")
    fake_env.add("cuda", runtime_compatible=True)
    out = fake_env.run_json(LAZINESS)
    assert out == {"scanned": False, "locked": False, "backend_modules": [], "native_modules": []}


def test_queries_do_not_load_native_code(fake_env):
    fake_env.add("host")
    fake_env.add("cuda", runtime_compatible=True)
    out = fake_env.run_json("""
        import json, sys, proteus
        info = [proteus.available_backends(), proteus.active_backend, proteus.active_backend_variant]
        print(json.dumps({"info": info, "locked": proteus._backend.is_locked(),
                          "native_modules": sorted(m for m in sys.modules if m.endswith("_proteus"))}))
    """)
    assert out == {"info": [["cuda", "host"], "cuda", "cuda12-llvm22"], "locked": False, "native_modules": []}
