"""The cache chain's shared levels (docs/ARCHITECTURE.md 6, "The cache chain"): an HTTP cache that
speaks Bazel's HTTP remote-cache protocol, and the two MPI levels over mpi4py. The engine calls
make_level() for each chain entry other than "storage" and then lookup()/store()/abandon() from the
thread compiling. Entries are opaque bytes here: the engine checks each one (format, key,
checksum) before it uses it, so whatever a server or a rank sends is at worst a miss."""

from __future__ import annotations

import atexit
import hashlib
import http.client
import os
import stat
import tempfile
import threading
import time
import urllib.parse
from typing import Any


def make_level(spec: str, options: dict[str, Any]) -> Any:
    if spec.startswith(("http://", "https://")):
        return HttpLevel(spec, options)
    if spec in ("mpi-local-lookup", "mpi-remote-lookup"):
        return MpiLevel(spec, options)
    raise ValueError(f"PROTEUS_OBJECT_CACHE_CHAIN: unknown level {spec!r}")


# --- HTTP -------------------------------------------------------------------------------------
# Bazel's HTTP cache protocol: GET/PUT {prefix}/cas/{sha256} holds content by its hash and
# {prefix}/ac/{key} an ActionResult (a protobuf) naming it, so bazel-remote (which checks both),
# nginx with WebDAV PUT or any Bazel cache service keeps our entries unchanged. Our entry is the
# one output file "proteus.pobj" of the "action" `key`.
OUTPUT_NAME = b"proteus.pobj"
RETRY_AFTER_FAILURE_S = 10.0  # a server that failed is not asked again for this long


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # a length-delimited protobuf field
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def action_result(sha256_hex: str, size: int) -> bytes:
    """ActionResult{output_files: [OutputFile{path, digest: Digest{hash, size_bytes}}]}."""
    digest = _field(1, sha256_hex.encode()) + _varint(2 << 3 | 0) + _varint(size)
    return _field(2, _field(1, OUTPUT_NAME) + _field(2, digest))


def _fields(data: bytes):
    """(number, wire type, value) of each field of a protobuf message; ValueError if malformed."""
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = value = 0
        while True:
            if pos >= len(data) or shift > 63:
                raise ValueError("truncated varint")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return value

    while pos < len(data):
        tag = varint()
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            yield number, wire, varint()
        elif wire == 2:
            length = varint()
            if pos + length > len(data):
                raise ValueError("truncated field")
            yield number, wire, data[pos:pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(data):
                raise ValueError("truncated field")
        else:
            raise ValueError(f"unsupported wire type {wire}")


def output_digest(result: bytes) -> tuple[str, int]:
    """The (sha256 hex, size) of our output file in an ActionResult; ValueError if it has none."""
    for number, wire, value in _fields(result):
        if number != 2 or wire != 2:
            continue
        path, digest = b"", b""
        for n, w, v in _fields(value):
            if n == 1 and w == 2:
                path = v
            elif n == 2 and w == 2:
                digest = v
        if path != OUTPUT_NAME:
            continue
        hash_hex, size = "", -1
        for n, w, v in _fields(digest):
            if n == 1 and w == 2:
                hash_hex = v.decode("ascii", "replace")
            elif n == 2 and w == 0:
                size = v
        if len(hash_hex) == 64 and size >= 0:
            return hash_hex, size
    raise ValueError("the action cache entry names no proteus.pobj output")


class HttpLevel:
    """One HTTP cache server. A request that fails (refused, timed out, a 5xx, an oversized or
    damaged answer) is an error, so a miss, and the server is left alone for a while."""

    def __init__(self, url: str, options: dict[str, Any]):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ValueError(f"PROTEUS_OBJECT_CACHE_CHAIN: {url!r} is not an http://host:port/prefix URL")
        self.url = url
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = float(options["http_timeout"])
        self.max_bytes = int(options["http_max_bytes"])
        self.headers: dict[str, str] = {}
        header = options["http_header"]
        if header:
            name, sep, value = header.partition(":")
            if not sep or not name.strip() or any(c in header for c in "\r\n"):
                raise ValueError("PROTEUS_HTTP_CACHE_HEADER must be one 'Name: value' header")
            self.headers[name.strip()] = value.strip()
        self._retry_at = 0.0

    def describe(self) -> str:
        auth = ", with PROTEUS_HTTP_CACHE_HEADER" if self.headers else ""
        return f"HTTP cache (Bazel protocol: ac/, cas/), timeout {self.timeout:g} s{auth}"

    def _request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if time.monotonic() < self._retry_at:
            raise OSError(f"{self.url} failed a moment ago; asking again in {self._retry_at - time.monotonic():.0f} s")
        deadline = time.monotonic() + self.timeout
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        conn = cls(self.host, self.port, timeout=self.timeout)
        try:
            conn.request(method, self.prefix + path, body=body, headers=self.headers)
            response = conn.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > self.max_bytes:
                raise ValueError(f"{self.url}{path}: {length} bytes, over PROTEUS_HTTP_CACHE_MAX_BYTES={self.max_bytes}")
            chunks, total = [], 0
            while True:  # bounded in size and in time, however slowly the server answers
                chunk = response.read(65536)
                if not chunk:
                    break
                total += len(chunk)
                if total > self.max_bytes:
                    raise ValueError(f"{self.url}{path}: over PROTEUS_HTTP_CACHE_MAX_BYTES={self.max_bytes}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.url}{path}: no full answer within {self.timeout:g} s")
                chunks.append(chunk)
            if response.status >= 500:
                raise OSError(f"{self.url}{path}: HTTP {response.status}")
            return response.status, b"".join(chunks)
        except (OSError, http.client.HTTPException, ValueError):
            self._retry_at = time.monotonic() + RETRY_AFTER_FAILURE_S
            raise
        finally:
            conn.close()

    def lookup(self, key: str) -> bytes | None:
        status, result = self._request("GET", f"/ac/{key}")
        if status == 404:
            return None
        if status != 200:
            raise OSError(f"{self.url}/ac/{key}: HTTP {status}")
        hash_hex, size = output_digest(result)
        status, data = self._request("GET", f"/cas/{hash_hex}")
        if status == 404:
            return None  # the server dropped the content but kept the action: a miss
        if status != 200 or len(data) != size or hashlib.sha256(data).hexdigest() != hash_hex:
            raise ValueError(f"{self.url}/cas/{hash_hex}: not the content its action cache entry names")
        return data

    def store(self, key: str, data: bytes) -> None:
        hash_hex = hashlib.sha256(data).hexdigest()
        for path, body in ((f"/cas/{hash_hex}", data), (f"/ac/{key}", action_result(hash_hex, len(data)))):
            status, _ = self._request("PUT", path, body)
            if status not in (200, 201, 204):
                raise OSError(f"{self.url}{path}: PUT answered HTTP {status}")

    def abandon(self, key: str) -> None:
        pass


# --- MPI --------------------------------------------------------------------------------------
# Rank 0 coordinates every key of the job: the first rank to miss it gets to compile it (a lease),
# ranks asking meanwhile wait for that compile, and its result goes to them all. mpi-remote-lookup
# sends the entry over MPI (rank 0 keeps them in memory); mpi-local-lookup has rank 0 write it into
# PROTEUS_MPI_CACHE_DIR, which every rank reads first. Messages use COMM_WORLD with tags 31000 and
# up, reserved for proteus. A rank that waits longer than PROTEUS_MPI_CACHE_TIMEOUT_MS (rank 0 gone,
# or the compiling rank died) compiles itself.
TAG_REQUEST = 31000
TAG_SHUTDOWN = 31001
REPLY_TAGS = range(31002, 32767)  # one per request in flight, so threads never wait on each other
POLL_S = 0.001


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ValueError("the MPI cache levels need mpi4py: pip install 'proteus-python[mpi]' "
                         f"(and an MPI library, e.g. Open MPI) ({e})") from None
    if not MPI.Is_initialized() or MPI.Is_finalized():
        raise ValueError("the MPI cache levels need MPI initialised (and not finalised) before the first compile: "
                         "import mpi4py.MPI (it initialises MPI) or call MPI.Init_thread()")
    return MPI


class _Coordinator:
    """Rank 0's table of keys: done (and, for remote lookups, the entry), or leased to a rank with
    others waiting. Answers go to callables, so rank 0's own requests and other ranks' are alike."""

    def __init__(self, keep_entries: bool, write_entry):
        self.lock = threading.Lock()
        self.done: dict[str, bytes | None] = {}
        self.leased: dict[str, list] = {}  # key -> the waiters' answer callables
        self.keep_entries = keep_entries
        self.write_entry = write_entry

    def lookup(self, key: str, answer) -> None:
        with self.lock:
            if key in self.done:
                answer(("hit", self.done[key]))
            elif key in self.leased:
                self.leased[key].append(answer)
            else:
                self.leased[key] = []
                answer(("compile", None))

    def store(self, key: str, data: bytes) -> None:
        if self.write_entry:
            self.write_entry(key, data)
        with self.lock:
            self.done[key] = data if self.keep_entries else None
            waiters = self.leased.pop(key, [])
        for answer in waiters:
            answer(("hit", data if self.keep_entries else None))

    def abandon(self, key: str) -> None:
        with self.lock:
            waiters = self.leased.get(key)
            if waiters is None:
                return
            if waiters:
                waiters.pop(0)(("compile", None))  # the lease passes to the next rank waiting
            else:
                del self.leased[key]


class MpiLevel:
    def __init__(self, spec: str, options: dict[str, Any]):
        MPI = _mpi()
        self.MPI = MPI
        self.spec = spec
        self.comm = MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = float(options["mpi_timeout"])
        self.local = spec == "mpi-local-lookup"
        self.directory = options["mpi_directory"]
        if self.local:
            self._check_directory()
        if self.size > 1 and MPI.Query_thread() < MPI.THREAD_MULTIPLE:
            raise ValueError(f"{spec} needs MPI initialised with MPI_THREAD_MULTIPLE (mpi4py's default); "
                             "this process has a lower thread level")
        self._tags = iter(())
        self._tag_lock = threading.Lock()
        self._sending: list = []
        self._rank0_gone = False
        self.coordinator = None
        if self.rank == 0:
            self.coordinator = _Coordinator(keep_entries=not self.local,
                                            write_entry=self._write_entry if self.local else None)
            if self.size > 1:
                self._stop = threading.Event()
                self._server = threading.Thread(target=self._serve, name="proteus-mpi-cache", daemon=True)
                self._server.start()
                atexit.register(self._shutdown)  # runs before mpi4py finalises MPI

    def describe(self) -> str:
        where = f", entries in {self.directory}" if self.local else ", entries sent over MPI"
        return f"rank {self.rank} of {self.size}; rank 0 coordinates{where}; waits up to {self.timeout:g} s"

    # The shared directory: ours and private, as the local cache directory must be (entries from it run).
    def _check_directory(self) -> None:
        if not self.directory:
            raise ValueError("mpi-local-lookup needs PROTEUS_MPI_CACHE_DIR: a directory on a filesystem every rank "
                             "reads (rank 0 writes the entries there)")
        try:
            st = os.stat(self.directory)
        except OSError as e:
            raise ValueError(f"PROTEUS_MPI_CACHE_DIR={self.directory} cannot be used by mpi-local-lookup: "
                             f"{e.strerror}; create it (mode 700) on a filesystem every rank reads") from None
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise ValueError(f"PROTEUS_MPI_CACHE_DIR={self.directory} must be a directory of this user that no one "
                             "else can write (chmod 700): code loaded from it runs in this process")

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key + ".pobj")

    def _read_entry(self, key: str) -> bytes | None:
        try:
            with open(self._path(key), "rb") as f:
                if os.fstat(f.fileno()).st_uid != os.geteuid():
                    return None
                return f.read()
        except OSError:
            return None

    def _write_entry(self, key: str, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix="." + key)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self._path(key))  # readers see the whole entry or none
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    # Rank 0: answer requests until shut down. Replies are sent without waiting; their requests
    # are kept until complete.
    def _reply(self, dest: int, tag: int, reply) -> None:
        request = self.comm.isend(reply, dest=dest, tag=tag)
        with self._tag_lock:
            self._sending = [r for r in self._sending if not r.Test()] + [request]

    def _serve(self) -> None:
        idle = POLL_S
        status = self.MPI.Status()
        while not self._stop.is_set():
            message = self.comm.improbe(source=self.MPI.ANY_SOURCE, tag=TAG_REQUEST, status=status)
            if message is None:
                time.sleep(idle)
                idle = min(idle * 2, 0.02)
                continue
            idle = POLL_S
            source = status.Get_source()
            try:
                kind, key, payload = message.recv()
            except Exception:  # not one of ours: a tag clash with the application
                continue
            if kind == "lookup":
                self.coordinator.lookup(key, lambda reply, s=source, t=payload: self._reply(s, t, reply))
            elif kind == "store":
                self.coordinator.store(key, payload)
            elif kind == "abandon":
                self.coordinator.abandon(key)

    def _shutdown(self) -> None:
        self._stop.set()
        self._server.join(timeout=1)
        for rank in range(1, self.size):  # they stop asking (and compile themselves)
            self._reply(rank, TAG_SHUTDOWN, None)

    def _next_tag(self) -> int:
        with self._tag_lock:
            tag = next(self._tags, None)
            if tag is None:
                self._tags = iter(REPLY_TAGS)
                tag = next(self._tags)
            return tag

    # Other ranks: every wait on rank 0 is bounded, and ends early once rank 0 said it stopped.
    def _until(self, ready, what: str):
        deadline = time.monotonic() + self.timeout
        idle = POLL_S
        while True:
            result = ready()
            if result is not None:
                return result
            if not self._rank0_gone and self.comm.iprobe(source=0, tag=TAG_SHUTDOWN):
                self.comm.recv(source=0, tag=TAG_SHUTDOWN)
                self._rank0_gone = True
            if self._rank0_gone:
                raise OSError(f"{self.spec}: rank 0 has stopped serving; this rank compiles itself")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.spec}: {what} within {self.timeout:g} s (PROTEUS_MPI_CACHE_TIMEOUT_MS); "
                                   "this rank compiles itself")
            time.sleep(idle)
            idle = min(idle * 2, 0.02)

    def _send(self, message) -> None:
        if self._rank0_gone:
            raise OSError(f"{self.spec}: rank 0 has stopped serving; this rank compiles itself")
        request = self.comm.isend(message, dest=0, tag=TAG_REQUEST)
        self._until(lambda: True if request.Test() else None, "rank 0 did not take a request")

    def lookup(self, key: str) -> bytes | None:
        if self.local and (data := self._read_entry(key)) is not None:
            return data
        if self.coordinator is not None:  # rank 0 itself
            answered = threading.Event()
            box = []
            self.coordinator.lookup(key, lambda reply: (box.append(reply), answered.set()))
            if not answered.wait(self.timeout):
                raise TimeoutError(f"{self.spec}: the rank compiling this key did not finish within {self.timeout:g} s")
            kind, data = box[0]
        else:
            tag = self._next_tag()
            self._send(("lookup", key, tag))
            message = self._until(lambda: self.comm.improbe(source=0, tag=tag),
                                  "no answer from rank 0 (or from the rank compiling this key)")
            kind, data = message.recv()
        if kind == "compile":
            return None  # ours to compile; store() or abandon() follows
        return self._read_entry(key) if self.local else data

    def store(self, key: str, data: bytes) -> None:
        if self.coordinator is not None:
            self.coordinator.store(key, data)
        else:
            self._send(("store", key, data))

    def abandon(self, key: str) -> None:
        if self.coordinator is not None:
            self.coordinator.abandon(key)
        else:
            self._send(("abandon", key, None))
