"""The cache chain (PROTEUS_OBJECT_CACHE_CHAIN) with an HTTP level: nginx with WebDAV PUT on loopback
as the Bazel-protocol cache two processes with separate local caches share; servers that are down,
slow or answer garbage are misses within the timeout, never wrong code. The MPI levels are
test_cache_chain_mpi.py (the mpi venv); here, where mpi4py is absent, they say how to get it."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

import proteus

CODE = """
import json, proteus
out = []
for k in range(3):
    src = 'extern "C" int f(int x) { return x * %d + 1; }' % (k + 2)
    out.append(proteus.compile(src).get_function("f", ...)(10))
info = proteus.cache_info()
print(json.dumps({"results": out, "runs": proteus.backend_info()["frontend_runs"], "levels": info["levels"]}))
"""
EXPECTED = [21, 31, 41]


def run(tmp_path, name, chain, **env):
    full = dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path / name), PROTEUS_OBJECT_CACHE_CHAIN=chain, **env)
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=full, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    out["seconds"] = time.monotonic() - started
    out["by_name"] = {level["name"]: level for level in out["levels"]}
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nginx(tmp_path):
    """nginx with WebDAV PUT on loopback (as tools/check_remote_cache.sh runs it): the cache's URL."""
    binary = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if not binary:
        pytest.skip("nginx is not installed (./tools/bazel installs nginx-light)")
    root, port = tmp_path / "nginx", free_port()
    (root / "cache").mkdir(parents=True)
    (root / "body").mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(f"""{user}worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  server {{
    listen 127.0.0.1:{port};
    root {root}/cache;
    location / {{
      dav_methods PUT;
      create_full_put_path on;
    }}
  }}
}}
""")
    subprocess.run([binary, "-c", str(root / "nginx.conf"), "-p", str(root)], check=True)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/proteus", root / "cache" / "proteus"
    subprocess.run(["kill", (root / "nginx.pid").read_text().strip()], check=False)


def test_two_processes_share_objects_through_the_http_cache(tmp_path, nginx):
    url, files = nginx
    first = run(tmp_path, "local-a", f"storage,{url}")
    assert first["results"] == EXPECTED and first["runs"] == 3
    assert first["by_name"][url]["misses"] > 0 and first["by_name"][url]["errors"] == 0
    # Bazel's layout: one action-cache entry per key, naming its content in the CAS.
    assert len(list((files / "ac").iterdir())) == first["by_name"][url]["misses"]
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() == p.name for p in (files / "cas").iterdir())
    second = run(tmp_path, "local-b", f"storage,{url}")
    assert second["results"] == EXPECTED
    assert second["runs"] == 0  # compiled by the first process, on its own local cache
    assert second["by_name"][url]["hits"] == first["by_name"][url]["misses"]
    assert second["by_name"]["storage"]["misses"] == second["by_name"][url]["hits"]
    # The HTTP hits filled the second process's local cache: now it needs no server at all.
    third = run(tmp_path, "local-b", f"storage,http://127.0.0.1:{free_port()}/down")
    assert third["runs"] == 0 and third["by_name"]["storage"]["hits"] == second["by_name"][url]["hits"]


def test_foreign_and_damaged_entries_are_misses(tmp_path, nginx):
    from proteus._cache_levels import action_result

    url, files = nginx
    run(tmp_path, "fill", url)  # the chain without storage: every lookup goes to the server
    entries = sorted((files / "cas").iterdir())
    # Every action now names the same content: a valid entry, but another key's for all but one.
    for ac in (files / "ac").iterdir():
        ac.write_bytes(action_result(entries[0].name, entries[0].stat().st_size))
    foreign = run(tmp_path, "fresh", url)
    assert foreign["results"] == EXPECTED  # never another key's code
    level = foreign["by_name"][url]
    assert level["rejected"] == len(entries) - 1 and level["hits"] == 1
    for entry in entries:  # the content damaged: its hash no longer matches its name
        entry.write_bytes(entry.read_bytes()[:-1] + b"!")
    damaged = run(tmp_path, "fresh2", url)
    assert damaged["results"] == EXPECTED and damaged["runs"] == 3
    assert damaged["by_name"][url]["hits"] == 0 and "not the content" in damaged["by_name"][url]["last_error"]


class BadServer:
    """A loopback HTTP server that never answers ("slow") or answers garbage ("garbage")."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.clients = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.clients.append(client)
            client.recv(65536)
            if self.mode == "garbage":
                body = os.urandom(3000)
                client.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                client.close()

    def close(self):
        self.sock.close()
        for c in self.clients:
            c.close()


@pytest.mark.parametrize("mode", ["slow", "garbage"])
def test_a_slow_or_garbage_server_is_a_miss_within_the_timeout(tmp_path, mode):
    server = BadServer(mode)
    try:
        out = run(tmp_path, mode, f"storage,http://127.0.0.1:{server.port}/x", PROTEUS_HTTP_CACHE_TIMEOUT_MS="400")
    finally:
        server.close()
    assert out["results"] == EXPECTED and out["runs"] == 3
    level = out["by_name"][f"http://127.0.0.1:{server.port}/x"]
    assert level["hits"] == 0 and level["errors"] >= 1 and level["last_error"]
    # One timeout, then the server is left alone for a while: not one timeout per compile.
    assert out["seconds"] < 20


def test_a_server_that_is_down(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/none"
    out = run(tmp_path, "down", f"storage,{url}")
    assert out["results"] == EXPECTED and out["by_name"][url]["errors"] >= 1
    assert "Connection refused" in out["by_name"][url]["last_error"] or "failed a moment ago" in out["by_name"][url]["last_error"]


def test_chain_settings_are_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(tmp_path / "c"))
    for bad, message in [("storage,ftp://x", "'ftp://x' is not a cache level"),
                         ("storage,storage", "names 'storage' twice"),
                         ("mpi-local-lookup,mpi-remote-lookup", "use one of mpi-local-lookup and mpi-remote-lookup")]:
        monkeypatch.setenv("PROTEUS_OBJECT_CACHE_CHAIN", bad)
        with pytest.raises(proteus.CompileError, match=message):
            proteus.compile('extern "C" int bad_chain() { return 1; }')
        assert message in proteus.cache_info()["chain_error"]
    monkeypatch.setenv("PROTEUS_OBJECT_CACHE_CHAIN", "storage,http://127.0.0.1:1/x")
    monkeypatch.setenv("PROTEUS_HTTP_CACHE_HEADER", "no colon here")
    with pytest.raises(proteus.CompileError, match="PROTEUS_HTTP_CACHE_HEADER must be one 'Name: value' header"):
        proteus.compile('extern "C" int bad_header() { return 2; }')


def test_the_mpi_levels_without_mpi4py(tmp_path, monkeypatch):
    try:
        import mpi4py  # noqa: F401
        pytest.skip("mpi4py is installed here")
    except ImportError:
        pass
    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("PROTEUS_OBJECT_CACHE_CHAIN", "storage,mpi-remote-lookup")
    with pytest.raises(proteus.CompileError, match=r"need mpi4py: pip install 'proteus-python\[mpi\]'"):
        proteus.compile('extern "C" int no_mpi() { return 3; }')


def test_the_report_shows_the_chain(tmp_path, nginx):
    url, _ = nginx
    env = dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path / "r"), PROTEUS_OBJECT_CACHE_CHAIN=f"storage,{url}")
    res = subprocess.run([sys.executable, "-m", "proteus"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "cache chain (PROTEUS_OBJECT_CACHE_CHAIN), looked up in this order:" in res.stdout
    assert f"  {url}: 0 hits, 0 misses, 0 rejected, 0 errors" in res.stdout
    assert f"  storage: 0 hits, 0 misses, 0 rejected, 0 errors - {tmp_path / 'r'}" in res.stdout


def test_action_cache_entries_parse_or_raise_value_error():
    """What a server returns under ac/ is parsed by hand (no protobuf dependency): mutated and random
    bytes either name an output or raise ValueError (a miss), nothing else."""
    import random

    from proteus._cache_levels import action_result, output_digest

    good = action_result("ab" * 32, 1234)
    assert output_digest(good) == ("ab" * 32, 1234)
    rng = random.Random(20261204)
    for _ in range(20000):
        data = bytearray(good if rng.random() < 0.8 else os.urandom(rng.randint(0, 120)))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data) + 1)
            kind = rng.randrange(3)
            if kind == 0 and pos < len(data):
                data[pos] = rng.randrange(256)
            elif kind == 1:
                del data[pos:pos + rng.randint(1, 8)]
            else:
                data[pos:pos] = os.urandom(rng.randint(1, 8))
        try:
            hash_hex, size = output_digest(bytes(data))
            assert len(hash_hex) == 64 and size >= 0
        except ValueError:
            pass
