"""Repository rule @third_party_notices: the license texts of everything a backend wheel links or ships.

A backend's extension module links LLVM, Clang and LLD (and the wheel ships clang's resource
headers), GCC's libstdc++ and libgcc, glibc's libc_nonshared wrappers, zlib and zstd statically, and
is compiled with pybind11's headers. Their texts are taken at build time from where those inputs
come from: the build machine's Debian packages (`dpkg-query -S` on the very file that is linked,
then that package's copyright file plus the full license it refers to) and pybind11's distribution
in the tools venv. Nothing of theirs is committed to this repository.
"""

# notice file -> (what it covers, how it is used, the file the build links, full license texts)
_COMPONENTS = {
    "LLVM.txt": (
        "LLVM, Clang and LLD",
        "linked statically; clang's resource headers are shipped",
        "llvm:libLLVMCore.a",
        ["Apache-2.0"],
    ),
    "GCC-runtime.txt": (
        "GCC's libstdc++ and libgcc (GCC Runtime Library Exception)",
        "linked statically",
        "cc:libstdc++.a",
        ["GPL-3"],
    ),
    "glibc.txt": (
        "the GNU C Library's libc_nonshared wrappers",
        "linked statically",
        "cc:libc_nonshared.a",
        ["LGPL-2.1"],
    ),
    "zlib.txt": ("zlib", "linked statically", "cc:libz.a", []),
    "zstd.txt": ("Zstandard", "linked statically", "cc:libzstd.a", []),
}
_COMMON_LICENSES = "/usr/share/common-licenses/"

def _fail(msg):
    fail("\n[proteus toolchain: third-party notices] " + msg)

def _run(ctx, args, what):
    res = ctx.execute(args, quiet = True)
    if res.return_code != 0:
        _fail("%s failed (exit %d): %s" % (what, res.return_code, res.stderr[-2000:]))
    return res.stdout.strip()

def _debian_package(ctx, path):
    """The Debian package that installed `path` (tried as given and with/without the /usr prefix)."""
    real = _run(ctx, ["readlink", "-f", path], "resolving " + path)
    candidates = [path, real] + [p[len("/usr"):] if p.startswith("/usr/") else "/usr" + p for p in (path, real)]
    for candidate in candidates:
        res = ctx.execute(["dpkg-query", "-S", candidate], quiet = True)
        if res.return_code == 0:
            return res.stdout.split(":")[0].strip()
    return _fail("no Debian package owns %s: the notices are taken from the packages the build links (Debian only)." % path)

def _notices_impl(ctx):
    llvm_config = ctx.which("llvm-config-22")
    cc = ctx.which(ctx.os.environ.get("CC", "clang-22"))
    if llvm_config == None or cc == None:
        _fail("llvm-config-22 and clang-22 must be on PATH (./tools/bazel installs them).")
    for name, (what, use, source, licenses) in _COMPONENTS.items():
        kind, file = source.split(":")
        if kind == "llvm":
            path = _run(ctx, [llvm_config, "--libdir"], "llvm-config-22 --libdir") + "/" + file
        else:
            path = _run(ctx, [cc, "--print-file-name=" + file], "locating " + file)
        package = _debian_package(ctx, path)
        version = _run(ctx, ["dpkg-query", "-W", "-f=${Version}", package], "dpkg-query " + package)
        copyright = ctx.read(_run(ctx, ["readlink", "-f", "/usr/share/doc/%s/copyright" % package], "copyright"))
        text = [
            "%s: %s in the proteus backend wheels." % (what, use),
            "Taken from Debian's %s %s (/usr/share/doc/%s/copyright), followed by the full text of the" % (package, version, package),
            "license(s) it refers to.",
            "",
            copyright,
        ]
        for license in licenses:
            text += ["", "=" * 78, "Full text of %s (%s%s):" % (license, _COMMON_LICENSES, license), "", ctx.read(_COMMON_LICENSES + license)]
        ctx.file(name, "\n".join(text))

    # pybind11: its own LICENSE, from its distribution in the tools venv (@proteus_py).
    venv = ctx.path(Label("@proteus_py//:BUILD.bazel")).dirname
    found = _run(
        ctx,
        ["find", str(venv) + "/tools_venv/", "-path", "*pybind11-*.dist-info/*", "-name", "LICENSE*"],
        "looking for pybind11's LICENSE",
    ).split("\n")
    if not found or not found[0]:
        _fail("pybind11's LICENSE is not in @proteus_py's tools venv.")
    ctx.file("pybind11.txt", "pybind11: its headers are compiled into the extension module.\n\n" + ctx.read(found[0]))

    ctx.file("BUILD.bazel", """package(default_visibility = ["//visibility:public"])

exports_files(["BUILD.bazel"])

# Shipped in every backend wheel's .dist-info/licenses/ (backends/backend.bzl).
filegroup(
    name = "backend_notices",
    srcs = {files},
)
""".format(files = repr(sorted(list(_COMPONENTS.keys()) + ["pybind11.txt"]))))

third_party_notices_repository = repository_rule(
    implementation = _notices_impl,
    environ = ["CC", "PATH"],
)
