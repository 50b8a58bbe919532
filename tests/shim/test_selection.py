"""Backend selection (docs/ARCHITECTURE.md section 3), against fake backend distributions in fresh interpreters."""

import pytest

SELECTION = """
import json, proteus
from proteus import _backend
backend, spec, why = _backend.select()
print(json.dumps({"kind": proteus.active_backend, "variant": proteus.active_backend_variant,
                  "select": [backend.kind, spec["id"], why],
                  "backends": proteus.available_backends(), "variants": proteus.available_backend_variants(),
                  "priorities": {b.kind: b.priority for b in _backend.discover()}}))
"""


def test_the_shim_names_the_distributions_backends_facts_state(backend_facts):
    # The shim names the wheel to install in its messages; backends/facts.bzl builds those wheels.
    from proteus import _backend

    assert _backend.DISTRIBUTIONS == {kind: facts.distribution for kind, facts in backend_facts.items()}


def test_priorities_come_from_the_backends(fake_env):
    for kind in ("host", "cuda", "rocm"):
        fake_env.add(kind)
    out = fake_env.run_json(SELECTION)
    assert out["priorities"] == {"host": 10, "rocm": 20, "cuda": 30}


def test_available_backends_and_variants_highest_priority_first(fake_env):
    for kind in ("host", "rocm", "cuda"):
        fake_env.add(kind)
    out = fake_env.run_json(SELECTION)
    assert out["backends"] == ["cuda", "rocm", "host"]
    assert out["variants"] == ["cuda12-llvm22", "rocm72-llvm22", "host-llvm22"]


@pytest.mark.parametrize(
    "compatible, expected",
    [
        ({"cuda", "rocm"}, "cuda"),
        ({"rocm"}, "rocm"),
        ({"cuda"}, "cuda"),
    ],
)
def test_highest_priority_runtime_compatible_backend_wins(fake_env, compatible, expected):
    fake_env.add("host")
    for kind in ("cuda", "rocm"):
        fake_env.add(kind, runtime_compatible=kind in compatible)
    out = fake_env.run_json(SELECTION)
    assert out["kind"] == expected
    assert out["variant"] == fake_env.backends[expected]["variant"]
    assert out["select"][2] == f"highest-priority runtime-compatible backend ({expected})"
    # all healthy backends stay available whatever is selected
    assert out["backends"] == ["cuda", "rocm", "host"]


def test_host_is_selected_when_no_gpu_backend_is_runtime_compatible(fake_env):
    # the GPU backends use the real probe code path against a driver library that does not exist
    for kind in ("host", "cuda", "rocm"):
        fake_env.add(kind)
    out = fake_env.run_json(SELECTION)
    assert out["kind"] == "host"
    assert out["variant"] == "host-llvm22"


def test_host_fallback_when_nothing_is_runtime_compatible(fake_env):
    for kind in ("host", "cuda", "rocm"):
        fake_env.add(kind, runtime_compatible=False)
    out = fake_env.run_json(SELECTION)
    assert out["kind"] == "host"
    assert out["select"][2] == "no backend is runtime-compatible; host is installed"


def test_highest_priority_fallback_without_host(fake_env):
    fake_env.add("cuda", runtime_compatible=False)
    fake_env.add("rocm", runtime_compatible=False)
    out = fake_env.run_json(SELECTION)
    assert out["kind"] == "cuda"
    assert out["select"][2] == "no backend is runtime-compatible; highest priority"


def test_runtime_probe_never_raises(fake_env):
    # libc loads, but has no such device-count function: the probe must answer False, not raise
    fake_env.add("host")
    fake_env.add("cuda", runtime_probe={"libraries": ["libproteus_missing.so", "libc.so.6"],
                                        "device_count": "proteus_test_no_such_symbol"})
    out = fake_env.run_json("""
        import json, sys
        import proteus_backend_cuda
        print(json.dumps(proteus_backend_cuda.is_runtime_compatible()))
    """)
    assert out is False
    assert fake_env.run_json(SELECTION)["kind"] == "host"


def test_variant_variable_selects_that_variant(fake_env):
    fake_env.add("host")
    fake_env.add("cuda", runtime_compatible=True)
    fake_env.add("rocm")
    out = fake_env.run_json(SELECTION, env={"PROTEUS_BACKEND_VARIANT": "rocm72-llvm22"})
    assert out["kind"] == "rocm"
    assert out["variant"] == "rocm72-llvm22"
    assert out["select"][2] == "PROTEUS_BACKEND_VARIANT=rocm72-llvm22"


def test_variant_variable_wins_over_kind_variable(fake_env):
    fake_env.add("host")
    fake_env.add("cuda")
    out = fake_env.run_json(SELECTION, env={"PROTEUS_BACKEND_VARIANT": "host-llvm22", "PROTEUS_BACKEND_KIND": "cuda"})
    assert out["kind"] == "host"


def test_variant_variable_without_match_names_installed_variants(fake_env):
    fake_env.add("host")
    fake_env.add("cuda")
    res = fake_env.outcome("proteus.compile", env={"PROTEUS_BACKEND_VARIANT": "cuda13-llvm23"})
    assert res["error"] == "ImportError"
    assert "'cuda13-llvm23'" in res["message"]
    assert "host-llvm22" in res["message"] and "cuda12-llvm22" in res["message"]


def test_kind_variable_selects_that_kind(fake_env):
    fake_env.add("host")
    fake_env.add("cuda", runtime_compatible=True)
    out = fake_env.run_json(SELECTION, env={"PROTEUS_BACKEND_KIND": "host"})
    assert out["kind"] == "host"
    assert out["select"][2] == "PROTEUS_BACKEND_KIND=host"
    # a GPU kind that is not runtime-compatible can still be forced
    fake_env.add("rocm")
    out = fake_env.run_json(SELECTION, env={"PROTEUS_BACKEND_KIND": "rocm"})
    assert out["kind"] == "rocm"
    assert out["variant"] == "rocm72-llvm22"


def test_kind_variable_not_installed_names_installed_kinds(fake_env):
    fake_env.add("host")
    fake_env.add("rocm")
    res = fake_env.outcome("proteus.compile", env={"PROTEUS_BACKEND_KIND": "cuda"})
    assert res["error"] == "ImportError"
    assert "PROTEUS_BACKEND_KIND='cuda'" in res["message"]
    assert "'host'" in res["message"] and "'rocm'" in res["message"]
    assert "proteus-python-backend-cuda12-llvm22" in res["message"]


def test_empty_variables_are_ignored(fake_env):
    fake_env.add("host")
    fake_env.add("cuda")
    out = fake_env.run_json(SELECTION, env={"PROTEUS_BACKEND_KIND": "", "PROTEUS_BACKEND_VARIANT": ""})
    assert out["kind"] == "host"


def test_native_api_is_reexported_from_the_selected_backend(fake_env):
    fake_env.add("host")
    fake_env.add("cuda", runtime_compatible=True)
    out = fake_env.run_json("""
        import json, sys, proteus
        import proteus_backend_cuda._proteus as native
        print(json.dumps({
            "same_compile": proteus.compile is native.compile,
            "same_i32": proteus.i32 is native.i32,
            "compiled": list(proteus.compile("int f();")),
            "has_cuda": proteus.has_cuda(),
            "kind": proteus.BACKEND_KIND,
            "host_loaded": "proteus_backend_host._proteus" in sys.modules,
        }))
    """)
    assert out == {"same_compile": True, "same_i32": True, "compiled": ["compiled-by", "cuda", "int f();"],
                   "has_cuda": True, "kind": "cuda", "host_loaded": False}


def test_native_api_follows_kind_variable(fake_env):
    fake_env.add("host")
    fake_env.add("cuda", runtime_compatible=True)
    out = fake_env.run_json("""
        import json, sys, proteus
        print(json.dumps([proteus.compile("x")[1], proteus.has_cuda(), "proteus_backend_cuda._proteus" in sys.modules]))
    """, env={"PROTEUS_BACKEND_KIND": "host"})
    assert out == ["host", False, False]


def test_unknown_attribute_is_attribute_error(fake_env):
    fake_env.add("host")
    res = fake_env.outcome("proteus.no_such_function")
    assert res["error"] == "AttributeError"
    assert "no_such_function" in res["message"]
    res = fake_env.outcome("hasattr(proteus, '__no_such_dunder__')")
    assert res == {"ok": True, "value": False}


def test_wildcard_import_gives_native_and_shim_names(fake_env):
    fake_env.add("host")
    out = fake_env.run_json("""
        import json
        from proteus import *
        names = dict(globals())
        print(json.dumps({
            "native": [n for n in ("compile", "i32", "has_cuda", "BACKEND_KIND") if n in names],
            "shim": [n for n in ("available_backends", "available_backend_variants", "active_backend",
                                 "active_backend_variant") if n in names],
            "compiled": list(compile("y")),
            "backends": available_backends(),
            "variants": available_backend_variants(),
            "active": [active_backend, active_backend_variant],
            "not_exported": "not_exported" in names,
        }))
    """)
    assert out["native"] == ["compile", "i32", "has_cuda", "BACKEND_KIND"]
    assert out["shim"] == ["available_backends", "available_backend_variants", "active_backend",
                           "active_backend_variant"]
    assert out["compiled"] == ["compiled-by", "host", "y"]
    assert out["backends"] == ["host"]
    assert out["variants"] == ["host-llvm22"]
    assert out["active"] == ["host", "host-llvm22"]
    assert out["not_exported"] is False  # the native module's __all__ is respected


def test_dir_lists_native_names_once_loaded(fake_env):
    fake_env.add("host")
    out = fake_env.run_json("""
        import json, proteus
        before = dir(proteus)
        proteus.compile
        after = dir(proteus)
        print(json.dumps({"before": "compile" in before, "after": "compile" in after,
                          "shim": all(n in before for n in ("available_backends", "active_backend"))}))
    """)
    assert out == {"before": False, "after": True, "shim": True}


def test_selection_is_locked_after_native_load(fake_env):
    fake_env.add("host")
    fake_env.add("cuda")
    out = fake_env.run_json("""
        import json, os, proteus
        from proteus import _backend
        before = _backend.is_locked()
        proteus.compile
        after = _backend.is_locked()
        again = _backend.load_native_module() is _backend.load_native_module(kind="host")
        os.environ["PROTEUS_BACKEND_KIND"] = "cuda"
        try:
            _backend.load_native_module()
            error = None
        except RuntimeError as exc:
            error = str(exc)
        try:
            _backend.load_native_module(variant="cuda12-llvm22")
            error2 = None
        except RuntimeError as exc:
            error2 = str(exc)
        os.environ["PROTEUS_BACKEND_KIND"] = "host"
        print(json.dumps({"before": before, "after": after, "again": again, "error": error, "error2": error2,
                          "still": proteus.compile("z")[1], "active": proteus.active_backend}))
    """)
    assert out["before"] is False and out["after"] is True and out["again"] is True
    assert out["error"] is not None and "locked" in out["error"] and "'host'" in out["error"]
    assert out["error2"] is not None and "locked" in out["error2"]
    assert out["still"] == "host"
    assert out["active"] == "host"


def test_lock_applies_to_the_variable_set_before_first_use(fake_env):
    # selection is not locked until native code is loaded: querying does not lock
    fake_env.add("host")
    fake_env.add("cuda")
    out = fake_env.run_json("""
        import json, os, proteus
        first = proteus.active_backend
        os.environ["PROTEUS_BACKEND_KIND"] = "cuda"
        second = proteus.active_backend
        native = proteus.compile("w")[1]
        print(json.dumps([first, second, native]))
    """)
    assert out == ["host", "cuda", "cuda"]


def test_native_module_loaded_once(fake_env):
    fake_env.add("host")
    out = fake_env.run_json("""
        import json, proteus, sys
        a = proteus.compile
        b = proteus.i32
        m = sys.modules["proteus_backend_host._proteus"]
        m.LOADS.append(1)
        print(json.dumps([a is m.compile, b is m.i32, len(sys.modules["proteus_backend_host._proteus"].LOADS)]))
    """)
    assert out == [True, True, 1]


def test_version(fake_env):
    import proteus
    from proteus import _version

    fake_env.add("host")
    out = fake_env.run_json("import json, proteus; print(json.dumps([proteus.__version__, proteus._backend.__version__]))")
    assert out == [_version.__version__, _version.__version__]
    assert isinstance(proteus.__version__, str) and proteus.__version__


def test_discovery_reads_entry_points_without_importlib_metadata(fake_env):
    # importlib.metadata costs tens of milliseconds to import; discovery reads the files it would read.
    fake_env.add("host")
    fake_env.add("cuda", broken="entry_point_raises")
    out = fake_env.run_json("""
        import json, sys, proteus
        from proteus import _backend
        kinds = proteus.available_backends()
        imported = "importlib.metadata" in sys.modules
        ours = sorted((e.name, e.value, e.distribution()) for e in _backend._entry_points("proteus.backends"))
        from importlib import metadata
        theirs = sorted((e.name, e.value, (e.dist.metadata["Name"], e.dist.version))
                        for e in metadata.entry_points(group="proteus.backends"))
        print(json.dumps({"kinds": kinds, "imported": imported, "same": ours == theirs, "n": len(ours)}))
    """)
    assert out == {"kinds": ["host"], "imported": False, "same": True, "n": 2}
