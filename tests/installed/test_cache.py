"""The persistent object cache and automatic precompiled headers (ARCHITECTURE 6), across processes."""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest

SRC = 'extern "C" int f(int x) { return x * %d; }'
HEADERS = '#include <cmath>\n#include <vector>\nextern "C" double g(double x) { std::vector<double> v(3, x); return std::sqrt(v[0] * v[1]) + %d; }\n'

CHILD = textwrap.dedent("""
    import json, sys, proteus
    results = []
    for src, k in json.loads(sys.argv[1]):
        f = proteus.compile(src).get_function("f" if "int f" in src else "g", *(
            (proteus.i32, [proteus.i32]) if "int f" in src else (proteus.f64, [proteus.f64])))
        results.append(f(k))
    print(json.dumps({"results": results, "info": proteus.backend_info(), "cache": proteus.cache_info()}))
""")


def child(items, cache_dir, **env):
    full = dict(os.environ, PROTEUS_CACHE_DIR=str(cache_dir), **env)
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(items)], capture_output=True, text=True, env=full)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def entries(cache_dir):
    return sorted(p for p in os.listdir(cache_dir) if p.endswith(".pobj"))


def test_hit_in_a_fresh_process_does_no_frontend_work(tmp_path):
    first = child([[SRC % 3, 5]], tmp_path)
    assert first["results"] == [15] and first["info"]["frontend_runs"] >= 1
    second = child([[SRC % 3, 5]], tmp_path)
    assert second["results"] == [15]
    assert second["info"]["frontend_runs"] == 0 and second["cache"]["hits"] >= 1 and second["cache"]["misses"] == 0
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o700


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage"])
def test_damaged_entries_are_recompiled_and_replaced(tmp_path, damage):
    child([[SRC % 7, 6]], tmp_path)
    for name in entries(tmp_path):
        path = tmp_path / name
        data = bytearray(path.read_bytes())
        if damage == "flip":
            data[-10] ^= 0xFF
        elif damage == "truncate":
            data = data[: len(data) // 2]
        elif damage == "empty":
            data = b""
        else:
            data = b"PROTEUSO" + os.urandom(200)
        path.write_bytes(bytes(data))
    again = child([[SRC % 7, 6]], tmp_path)
    assert again["results"] == [42] and again["info"]["frontend_runs"] >= 1
    third = child([[SRC % 7, 6]], tmp_path)
    assert third["results"] == [42] and third["info"]["frontend_runs"] == 0


def test_eight_processes_fifty_compiles_one_directory(tmp_path):
    procs = []
    for p in range(8):
        # half shared keys (races on the same entry), half distinct per process
        items = [[SRC % (i % 25 + 2 if i < 25 else 100 + p * 50 + i), 3] for i in range(50)]
        env = dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path))
        procs.append((items, subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(items)], env=env,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    for items, proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        expected = [int(src.split("* ")[1].split(";")[0]) * 3 for src, _ in items]
        assert json.loads(out)["results"] == expected
    assert not [p for p in os.listdir(tmp_path) if ".tmp." in p]
    # every entry is whole: a fresh process hits all of them without compiling
    all_items = [[SRC % (i % 25 + 2), 1] for i in range(25)]
    check = child(all_items, tmp_path)
    assert check["info"]["frontend_runs"] == 0 and check["cache"]["misses"] == 0


def test_foreign_writable_directory_is_refused(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    code = ("import proteus\ntry:\n    proteus.compile('int x;')\nexcept PermissionError as e:\n"
            "    print(type(e).__name__, isinstance(e, proteus.CacheError), e)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PROTEUS_CACHE_DIR=str(shared)))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("CacheError True ") and str(shared) in res.stdout and "chmod 700" in res.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_directory_owned_by_another_user_is_refused(tmp_path):
    other = tmp_path / "other"
    other.mkdir(mode=0o700)
    try:
        os.chown(other, 65534, 65534)
    except OSError as exc:  # e.g. Bazel's linux-sandbox: a user namespace that maps only root
        pytest.skip(f"cannot give a directory to another user here: {exc}")
    res = subprocess.run([sys.executable, "-c", "import proteus; proteus.compile('int x;')"], capture_output=True,
                         text=True, env=dict(os.environ, PROTEUS_CACHE_DIR=str(other)))
    assert res.returncode != 0 and "owned by uid 65534" in res.stderr


def test_disabled_cache_writes_nothing(tmp_path):
    target = tmp_path / "never"
    out = child([[SRC % 9, 2], [HEADERS % 1, 4.0]], target, PROTEUS_USE_STORED_CACHE="0")
    assert out["results"] == [18, 5.0] and out["cache"]["enabled"] is False
    assert not target.exists()


def test_size_bound_evicts_least_recently_used(tmp_path):
    bound = 6000
    out = child([[SRC % (i + 300), 1] for i in range(30)], tmp_path, PROTEUS_CACHE_MAX_BYTES=str(bound))
    assert out["results"] == [i + 300 for i in range(30)]
    total = sum(os.path.getsize(tmp_path / n) for n in entries(tmp_path))
    assert 0 < total <= bound and len(entries(tmp_path)) < 30


def test_cache_info_and_clear(tmp_path):
    code = textwrap.dedent("""
        import proteus
        proteus.compile('extern "C" int a() { return 1; }')
        info = proteus.cache_info()
        print(info["dir"], info["entries"] > 0, info["bytes"] > 0, proteus.clear_cache() > 0, proteus.cache_info()["entries"])
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path)))
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(tmp_path), "True", "True", "True", "0"]


def test_precompiled_header_is_built_once_and_reused(tmp_path):
    first = child([[HEADERS % 1, 4.0]], tmp_path)
    assert first["results"] == [5.0] and first["info"]["pch_builds"] == 1 and first["info"]["pch_uses"] == 1
    second = child([[HEADERS % 2, 4.0]], tmp_path)  # different source, same include prefix
    assert second["results"] == [6.0] and second["info"]["pch_builds"] == 0 and second["info"]["pch_uses"] == 1
    assert len([p for p in os.listdir(tmp_path / "pch") if p.endswith(".pch")]) == 1


def test_precompiled_header_keeps_diagnostics(tmp_path):
    bad = '#include <vector>\nextern "C" int h() {\n  return undefined_name;\n}\n'
    code = ("import proteus\ntry:\n    proteus.compile(%r)\nexcept proteus.CompileError as e:\n    print(e)" % bad)
    outs = []
    for use_pch in ("1", "0"):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path), PROTEUS_USE_PCH=use_pch))
        outs.append(res.stdout)
    assert "source.cpp:3:10" in outs[0] and outs[0] == outs[1]


def test_stale_precompiled_header_is_rebuilt(tmp_path):
    inc = tmp_path / "inc"
    (inc / "sys").mkdir(parents=True)
    header = inc / "sys" / "mine.h"
    header.write_text("inline int base() { return 1; }\n")
    src = '#include <sys/mine.h>\nextern "C" int f(int x) { return base() + x; } // %d'
    env = {"PROTEUS_CACHE_DIR": str(tmp_path / "cache")}
    item = lambda k: [[src % k, 10]]
    code_env = dict(os.environ, **env)
    run = lambda k: json.loads(subprocess.run([sys.executable, "-c", CHILD.replace(
        "proteus.compile(src)", "proteus.compile(src, extra_args=['-isystem', %r])" % str(inc)), json.dumps(item(k))],
        capture_output=True, text=True, env=code_env, check=True).stdout)
    assert run(1)["results"] == [11]
    header.write_text("inline int base() { return 100; }\n")
    os.utime(header, (os.stat(header).st_atime + 10, os.stat(header).st_mtime + 10))
    out = run(2)
    assert out["results"] == [110] and out["info"]["pch_builds"] == 1


@pytest.mark.parametrize("value", ["-1", "abc", " 5", "1e9", "99999999999999999999999", "12MB"])
def test_bad_size_bound_is_a_value_error_naming_the_variable(tmp_path, monkeypatch, value):
    import proteus

    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PROTEUS_CACHE_MAX_BYTES", value)
    with pytest.raises(ValueError, match="PROTEUS_CACHE_MAX_BYTES=.* is not a number of bytes"):
        proteus.compile(SRC % 97)
    monkeypatch.setenv("PROTEUS_CACHE_MAX_BYTES", "1048576")  # and the process carries on
    assert proteus.compile(SRC % 97).get_function("f", proteus.i32, [proteus.i32])(2) == 194


# --- what a cached result depends on ---------------------------------------------------------------

HEADER_USER = '#include "value.h"\nextern "C" int f(int x) { return VALUE * x; }\n'


def header_child(tmp_path, inc):
    """A fresh process compiling HEADER_USER against inc/value.h: (result of f(1), frontend_runs)."""
    code = ("import json, proteus\nm = proteus.compile(%r, extra_args=['-I', %r])\n"
            "print(json.dumps([m.get_function('f', proteus.i32, [proteus.i32])(1), proteus.backend_info()['frontend_runs']]))"
            % (HEADER_USER, str(inc)))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path / "cache")))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def write_keeping_times(path, text):
    """Change a file's content keeping its size and its mtime (only ctime, which no one can set, moves)."""
    before = os.stat(path)
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(path).st_size == before.st_size and os.stat(path).st_mtime_ns == before.st_mtime_ns


def test_an_edited_header_is_never_served_stale(tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    header = inc / "value.h"
    header.write_text("#define VALUE 1\n")
    assert header_child(tmp_path, inc)[0] == 1
    assert header_child(tmp_path, inc) == [1, 0]  # a disk hit: no frontend work
    write_keeping_times(header, "#define VALUE 7\n")  # same size, same mtime
    assert header_child(tmp_path, inc)[0] == 7
    assert header_child(tmp_path, inc) == [7, 0]  # the replaced entry is a hit again


def test_a_touched_but_unchanged_header_still_hits(tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "value.h").write_text("#define VALUE 3\n")
    assert header_child(tmp_path, inc)[0] == 3
    os.utime(inc / "value.h")
    assert header_child(tmp_path, inc) == [3, 0]


def test_an_edited_header_is_not_served_from_memory(tmp_path, monkeypatch):
    import proteus

    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(tmp_path / "cache"))
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "value.h").write_text("#define VALUE 4\n")
    first = proteus.compile(HEADER_USER, extra_args=["-I", str(inc)])
    assert first.get_function("f", proteus.i32, [proteus.i32])(1) == 4
    address = first.get_function_address("f")
    again = proteus.compile(HEADER_USER, extra_args=["-I", str(inc)])
    assert again.get_function_address("f") == address  # unchanged: the same code, from memory
    write_keeping_times(inc / "value.h", "#define VALUE 5\n")
    second = proteus.compile(HEADER_USER, extra_args=["-I", str(inc)])
    assert second.get_function_address("f") != address
    assert second.get_function("f", proteus.i32, [proteus.i32])(1) == 5


def pch_files(cache_dir):
    return sorted((cache_dir / "pch").glob("*.pch"))


@pytest.mark.parametrize("attack", ["copied", "symlinked", "damaged"])
def test_a_foreign_or_damaged_precompiled_header_is_rebuilt(tmp_path, attack):
    vector_src = '#include <vector>\nextern "C" int f(int x) { std::vector<int> v(x, 2); return (int)v.size() * 21; }\n'
    cache = tmp_path / "cache"
    assert child([[HEADERS % 1, 4.0]], cache)["results"] == [5.0]  # the <cmath>+<vector> PCH
    cmath_pch = pch_files(cache)[0]
    assert child([[vector_src, 2]], cache)["results"] == [42]  # the <vector> PCH
    (vector_pch,) = [p for p in pch_files(cache) if p != cmath_pch]
    if attack == "copied":
        vector_pch.write_bytes(cmath_pch.read_bytes())
    elif attack == "symlinked":
        vector_pch.unlink()
        vector_pch.symlink_to(cmath_pch)
    else:
        data = bytearray(vector_pch.read_bytes())
        data[len(data) // 2: len(data) // 2 + 4096] = os.urandom(4096)
        write_back = vector_pch.read_bytes()
        vector_pch.write_bytes(bytes(data))
        assert len(write_back) == len(data)
    out = child([[vector_src.replace("21", "7"), 6]], cache)
    assert out["results"] == [42] and out["info"]["pch_builds"] == 1 and out["info"]["pch_uses"] == 1


def test_a_removed_cache_directory_is_made_again(tmp_path, monkeypatch):
    import shutil

    import proteus

    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(tmp_path / "cache"))
    assert proteus.compile(SRC % 61).get_function("f", proteus.i32, [proteus.i32])(2) == 122
    shutil.rmtree(tmp_path / "cache")
    assert proteus.compile(SRC % 62).get_function("f", proteus.i32, [proteus.i32])(2) == 124
    assert entries(tmp_path / "cache")  # and it is used again


def test_a_symlinked_cache_directory_of_ours_is_followed(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    assert child([[SRC % 63, 2]], tmp_path / "link")["results"] == [126]
    assert entries(real)


def entry_of(tmp_path, item):
    """Compiles item ([source, arg]) in a fresh process; its result and the name of its cache entry."""
    child([[SRC % 1, 1]], tmp_path)  # the call thunk's entry exists before
    before = set(entries(tmp_path))
    out = child([item], tmp_path)
    (entry,) = set(entries(tmp_path)) - before
    return out, entry


def test_an_oversized_entry_is_a_miss_not_read(tmp_path):
    first, entry = entry_of(tmp_path, [SRC % 64, 1])
    with open(tmp_path / entry, "r+b") as f:  # sparse: 4 GiB on paper, nothing on disk
        f.truncate(4 << 30)
    out = child([[SRC % 64, 1]], tmp_path, PROTEUS_CACHE_MAX_BYTES=str(1 << 30))
    # compiled again (the call thunk's entry, of normal size, is the process's one disk hit)
    assert out["results"] == first["results"] == [64] and out["info"]["frontend_runs"] == 1


def test_a_fifo_planted_as_an_entry_is_not_waited_on(tmp_path):
    _, entry = entry_of(tmp_path, [SRC % 65, 1])
    os.unlink(tmp_path / entry)
    os.mkfifo(tmp_path / entry, 0o600)
    full = dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path))
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps([[SRC % 65, 1]])], capture_output=True, text=True,
                         env=full, timeout=120)  # a blocking open() of the FIFO would hang here
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["results"] == [65]


def test_precompiled_headers_are_entries_counted_and_cleared(tmp_path, monkeypatch):
    import proteus

    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(tmp_path))
    assert child([[HEADERS % 3, 4.0]], tmp_path)["results"] == [7.0]
    (pch,) = pch_files(tmp_path)
    info = proteus.cache_info()
    objects = sum(os.path.getsize(tmp_path / e) for e in entries(tmp_path))
    assert info["bytes"] == objects + os.path.getsize(pch)  # the PCH counts in the size bound
    assert info["entries"] == len(entries(tmp_path)) + 1
    assert proteus.clear_cache() == info["entries"]
    assert os.listdir(tmp_path / "pch") == [] and entries(tmp_path) == []


def test_temp_files_left_by_killed_processes_are_removed(tmp_path, monkeypatch):
    import proteus

    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(tmp_path))
    proteus.cache_info()  # makes the directory
    (tmp_path / "pch").mkdir(mode=0o700, exist_ok=True)
    old = [tmp_path / ("." + "a" * 64 + ".tmp.Xy12Zq"), tmp_path / "pch" / ("b" * 64 + ".pch.tmp.123.456")]
    fresh = tmp_path / "pch" / ("c" * 64 + ".pch.tmp.789.1")  # a build in progress elsewhere
    for path in old + [fresh]:
        path.write_bytes(b"partial")
    two_hours_ago = os.stat(fresh).st_mtime - 7200
    for path in old:
        os.utime(path, (two_hours_ago, two_hours_ago))
    proteus.cache_info()
    assert not any(p.exists() for p in old) and fresh.exists()


def test_a_store_does_not_list_the_directory_every_time(tmp_path):
    """Eviction cost is independent of the number of entries: a process lists the cache on its first
    store, then only after storing a twentieth of the bound (or when its estimate crosses it). A stale
    temp file, which any listing removes, shows whether one happened."""
    code = textwrap.dedent("""
        import os, sys, proteus
        stale = sys.argv[1]
        def plant():
            open(stale, "wb").write(b"partial"); t = os.stat(stale).st_mtime - 7200; os.utime(stale, (t, t))
        plant()
        proteus.compile('extern "C" int a() { return 1; }')  # the first store lists the directory
        assert not os.path.exists(stale)
        plant()
        for i in range(8):
            proteus.compile('extern "C" int b%d() { return %d; }' % (i, i))
        print("listed" if not os.path.exists(stale) else "not listed")
    """)

    def run(max_bytes):
        cache = tmp_path / max_bytes  # a cache of its own: every compile stores
        cache.mkdir(mode=0o700)
        res = subprocess.run([sys.executable, "-c", code, str(cache / ("." + "d" * 64 + ".tmp.Ab12Cd"))],
                             capture_output=True, text=True, timeout=300,
                             env=dict(os.environ, PROTEUS_CACHE_DIR=str(cache), PROTEUS_CACHE_MAX_BYTES=max_bytes))
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    assert run(str(1 << 30)) == "not listed"  # eight small stores, far below a twentieth of 1 GiB
    assert run("20000") == "listed"  # each entry is more than a twentieth of 20 kB: every store lists
