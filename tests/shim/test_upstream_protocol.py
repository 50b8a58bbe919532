"""Compatibility with upstream Proteus' backend protocol (docs/ARCHITECTURE.md section 3): backends
whose variant spec is only id and kind, `_backend.py` loaded by path, the backend packages'
available_variants() / active_variant() and forwarded native names, and proteus.__doc__."""


def test_a_minimal_variant_spec_is_a_healthy_backend(fake_env):
    fake_env.add("host", minimal=True)
    fake_env.add("cuda", minimal=True, runtime_compatible=True)
    out = fake_env.run_json("""
        import json, proteus
        from proteus import _backend
        backend, spec, why = _backend.select()
        print(json.dumps({"active": proteus.active_backend, "variants": proteus.available_backend_variants(),
                          "spec": spec, "compiled": proteus.compile("s")[1]}))
    """)
    assert out["active"] == "cuda" and out["variants"] == ["cuda12-llvm22", "host-llvm22"]
    # the absent keys take the documented defaults: the entry point's module and priority (0: the
    # manifest states none), nothing else stated
    assert out["spec"] == {"id": "cuda12-llvm22", "kind": "cuda", "module": "proteus_backend_cuda", "priority": 0,
                           "llvm_major": None, "cuda_major": None, "rocm_version": None, "platform": None,
                           "version": None}
    assert out["compiled"] == "cuda"


def test_a_spec_of_another_kind_is_broken(fake_env):
    fake_env.add("host")
    fake_env.add("cuda", variant_id="host-llvm22-x")
    r = fake_env.run_py("""
        import proteus
        from proteus import _backend
        for b in _backend.discover():
            print(b.kind, b.problem)
    """)
    assert r.returncode == 0, r.stderr  # both healthy: the id is free, the kind is the backend's
    assert "cuda None" in r.stdout


def test_backend_module_loads_by_path(fake_env):
    fake_env.add("host", minimal=True)
    out = fake_env.run_json("""
        import importlib.util, json, pathlib, proteus
        path = pathlib.Path(proteus.__file__).with_name("_backend.py")
        spec = importlib.util.spec_from_file_location("standalone_backend", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(json.dumps({"version": module.__version__, "kinds": module.available_backends(),
                          "native": module.load_native_module().BACKEND_KIND}))
    """)
    assert out == {"version": None, "kinds": ["host"], "native": "host"}


def test_backend_packages_follow_the_upstream_names(fake_env):
    fake_env.add("host")
    out = fake_env.run_json("""
        import json, sys
        import proteus_backend_host as package
        before = "proteus_backend_host._proteus" in sys.modules
        result = package.compile("x")  # a native name, forwarded
        print(json.dumps({"variants": package.available_variants(), "active": package.active_variant(),
                          "loaded_before": before, "compiled": result[1]}))
    """)
    assert out == {"variants": ["host-llvm22"], "active": "host-llvm22", "loaded_before": False, "compiled": "host"}


def test_proteus_doc_is_the_native_modules_once_loaded(fake_env):
    fake_env.add("host")
    out = fake_env.run_json("""
        import json, proteus
        before = proteus.__doc__
        proteus.compile
        print(json.dumps([before.splitlines()[0], proteus.__doc__]))
    """)
    assert out[0].startswith("proteus: JIT-compile C++")
    assert out[1] == "Fake native module of the host backend (stands in for the compiled extension)."
