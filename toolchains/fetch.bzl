"""Pinned downloads for the repository rules: npm packages (sha256) and PyPI wheels (pip --require-hashes)."""

def npm_package(ctx, package, version, sha256):
    """Extracts the npm registry's tarball of `package`@`version`, checked against `sha256`, into the repository."""
    ctx.download_and_extract(
        url = "https://registry.npmjs.org/%s/-/%s-%s.tgz" % (package, package.rpartition("/")[2], version),
        sha256 = sha256,
        type = "tar.gz",
        stripPrefix = "package",
    )

def pinned_wheel(ctx, python, requirements, into):
    """Downloads the one wheel `requirements` pins (by hash, no dependencies) and extracts it.

    Args:
      ctx: the repository context.
      python: the interpreter whose pip downloads it.
      requirements: a requirements file of one `--hash`-pinned wheel.
      into: the directory the wheel's files are extracted to.

    Returns:
      None, or pip's error output when the download failed.
    """
    res = ctx.execute(
        [
            python,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--dest",
            into + ".download",
            "-r",
            requirements,
        ],
        environment = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"},
        timeout = 600,
        quiet = True,
    )
    if res.return_code != 0:
        return res.stderr[-3000:] or res.stdout[-3000:]
    wheels = [w for w in ctx.path(into + ".download").readdir() if w.basename.endswith(".whl")]
    ctx.symlink(wheels[0], into + ".zip")  # a wheel is a zip; Bazel 4 picks the format by suffix
    ctx.extract(into + ".zip", into)
    ctx.delete(into + ".zip")
    ctx.delete(into + ".download")
    return None
