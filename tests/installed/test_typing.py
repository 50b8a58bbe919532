"""The installed API is typed and documented: py.typed + stubs that mypy --strict accepts for correct
programs and rejects wrong ones, signatures inspect can read, docstrings help() shows."""

import inspect
import pydoc
import subprocess
import sys
import textwrap

import proteus

GOOD = textwrap.dedent('''
    import proteus

    def main() -> float:
        mod: proteus.Module = proteus.compile(
            'extern "C" double twice(double x) { return 2 * x; }', frontend="cpp", extra_args=["-O2"])
        fn: proteus.Function = mod.get_function("twice", restype=proteus.f64, argtypes=[proteus.f64])
        assert fn.restype == proteus.f64 and fn.argtypes == [proteus.f64] and fn.name == "twice"
        names: list[str] = mod.functions
        assert names == ["twice"] and mod.get_function_address("twice") == fn.address
        try:
            proteus.compile("int broken( {")
        except proteus.CompileError as err:
            assert "error:" in str(err)
        try:
            proteus.compile('#include <stdexcept>\\nextern "C" void t() { throw std::runtime_error("no"); }',
                            timeout=60.0).get_function("t")()
        except proteus.NativeError as native:
            type_name: str = native.type_name
            what: str | None = native.what
            assert type_name == "std::runtime_error" and what == "no"
        info = proteus.cache_info()
        assert isinstance(info["entries"], int) and isinstance(proteus.clear_cache(), int)
        assert proteus.active_backend in proteus.available_backends()
        assert not proteus.has_cuda and proteus.backend_info()["build"] == "optimized"
        result: float = fn(21.0)
        return result

    print(main())
''')

# Each line a mistake mypy must catch through the stubs.
BAD = textwrap.dedent('''
    import proteus

    proteus.compile(42)
    proteus.compile("x", verify="yes")
    proteus.compile("x", timeout="5")
    mod = proteus.compile("x")
    mod.get_function(7)
    mod.get_function("f", restype="i32")
    mod.no_such_method()
    n: str = proteus.clear_cache()
    proteus.i32.name = "other"
''')


def mypy(tmp_path, source: str) -> subprocess.CompletedProcess:
    program = tmp_path / "program.py"
    program.write_text(source)
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
                           str(tmp_path / "mypy_cache"), str(program)], capture_output=True, text=True, cwd=tmp_path)


def test_mypy_strict_accepts_a_correct_program_that_runs(tmp_path):
    res = mypy(tmp_path, GOOD)
    assert res.returncode == 0, res.stdout + res.stderr
    run = subprocess.run([sys.executable, str(tmp_path / "program.py")], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "42.0", run.stdout + run.stderr


def test_mypy_strict_rejects_wrong_calls(tmp_path):
    res = mypy(tmp_path, BAD)
    errors = [line for line in res.stdout.splitlines() if ": error:" in line]
    lines = {int(line.split(":")[1]) for line in errors}
    assert lines == set(range(4, 13)) - {7}, res.stdout


def test_the_package_is_marked_typed():
    from importlib import resources

    assert resources.files("proteus").joinpath("py.typed").is_file()
    assert resources.files("proteus").joinpath("__init__.pyi").is_file()


def test_signature_and_docstrings():
    params = list(inspect.signature(proteus.compile).parameters)
    assert params == ["source", "frontend", "target", "extra_args", "compiler", "verify", "timeout", "link"]
    assert inspect.signature(proteus.compile).parameters["frontend"].default == "cpp"
    assert inspect.signature(proteus.compile).parameters["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "CompileError" in proteus.compile.__doc__
    for obj, words in [(proteus.Module, "get_function"), (proteus.Function, "restype"), (proteus.Type, "scalar type"),
                       (proteus.CompileError, "diagnostics"), (proteus.NativeError, "what()"),
                       (proteus.cache_info, "persistent"),
                       (proteus.backend_info, "LLVM")]:
        text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
        assert words in text, (obj, text[:500])
