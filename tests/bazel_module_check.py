"""The bzlmod path, checked by inspection (no registry here, so Bazel 7+ never runs it):

- MODULE.bazel's `use_repo` names exactly the repositories `proteus_toolchains()` creates, and every
  repository a BUILD/.bzl file, a generated BUILD file or .bazelrc names is a `bazel_dep`, one of
  those, or Bazel's own;
- every rule or macro a BUILD/.bzl file calls is loaded, defined there or a Starlark/Bazel built-in
  that Bazel 9 still has (it removed the native cc_*, py_*, java_*, proto_* and sh_* rules);
- `.bazelversion` names a Bazel with bzlmod, and WORKSPACE.bzlmod holds nothing.
"""

import ast
import os
import re

from tests.bazel_files import GENERATED, ROOT, tracked_bazel_files

BAZEL_OWN_REPOS = {"bazel_tools", "local_config_platform"}

# Callable without a load() in Bazel 9: Starlark's built-ins, the BUILD-file globals that stayed
# native, the .bzl/WORKSPACE/MODULE API.
BUILTINS = set("""
    all any bool dict dir enumerate fail float getattr hasattr hash int len list max min print range
    repr reversed sorted str tuple type zip
    alias config_setting constraint_setting constraint_value environment_group exports_files filegroup
    genquery genrule glob label_flag label_setting licenses package package_group platform select
    subpackages test_suite toolchain toolchain_type existing_rule existing_rules
    Label depset provider rule repository_rule module_extension tag_class aspect struct
    configuration_field DefaultInfo OutputGroupInfo
    workspace local_repository new_local_repository register_toolchains register_execution_platforms
    load module bazel_dep use_extension use_repo
""".split())

# Bazel 9 took these out of the `native` module as well as the BUILD globals.
REMOVED_NATIVE = re.compile(r"^(cc|py|java|proto|sh|objc|j2objc|android)_|^fdo_")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def module_bazel():
    """Runs MODULE.bazel (its statements are Python-compatible calls) and records what it declares."""
    seen = {"deps": {}, "use_repo": [], "toolchains": [], "extensions": []}

    def bazel_dep(name, version, repo_name=None, **_):
        seen["deps"][repo_name or name] = version

    def use_extension(bzl, name, **_):
        seen["extensions"].append((bzl, name))
        return name

    def use_repo(_extension, *names, **mapped):
        seen["use_repo"] += list(names) + list(mapped)

    def register_toolchains(*labels, **_):
        seen["toolchains"] += labels

    exec(compile(read(os.path.join(ROOT, "MODULE.bazel")), "MODULE.bazel", "exec"), {
        "module": lambda **_: None, "bazel_dep": bazel_dep, "use_extension": use_extension,
        "use_repo": use_repo, "register_toolchains": register_toolchains})
    return seen


def repositories_the_extension_creates():
    tree = ast.parse(read(os.path.join(ROOT, "toolchains/repositories.bzl")))
    body = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "proteus_toolchains")
    return sorted(kw.value.value for call in ast.walk(body) if isinstance(call, ast.Call)
                  for kw in call.keywords if kw.arg == "name")


def named_repositories(text):
    return set(re.findall(r"""["'\s=]@@?([A-Za-z0-9_](?:[A-Za-z0-9_.~+-]*[A-Za-z0-9_])?)(?=//|["':])""", text))


def main_repository_files():
    """The tracked BUILD/.bzl files that Bazel 7+ reads: all but the offline stand-ins."""
    return [f for f in tracked_bazel_files() if not os.path.relpath(f, ROOT).startswith("third_party/")]


def unloaded_calls(path):
    """Calls in a BUILD/.bzl file of names it neither loads, defines nor has built in."""
    tree = ast.parse(read(path), path)
    defined = set(BUILTINS)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load":
            defined.update(kw.arg for kw in node.keywords)
            defined.update(a.value for a in node.args[1:] if isinstance(a, ast.Constant))
        elif isinstance(node, (ast.FunctionDef, ast.Lambda)):
            if isinstance(node, ast.FunctionDef):
                defined.add(node.name)
            args = node.args
            defined.update(a.arg for a in args.args + args.kwonlyargs)
            defined.update(a.arg for a in (args.vararg, args.kwarg) if a)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id not in defined:
            problems.append(f"{path}:{node.lineno}: {func.id}() is not loaded")
        elif (isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "native"
              and REMOVED_NATIVE.search(func.attr)):
            problems.append(f"{path}:{node.lineno}: native.{func.attr}() is gone in Bazel 9: load it")
    return problems


def test_use_repo_names_exactly_the_toolchain_repositories():
    module = module_bazel()
    assert module["extensions"] == [("//toolchains:extensions.bzl", "toolchains")]
    assert sorted(module["use_repo"]) == repositories_the_extension_creates()


def test_every_named_repository_is_declared():
    module = module_bazel()
    declared = set(module["deps"]) | set(module["use_repo"]) | BAZEL_OWN_REPOS
    sources = main_repository_files() + GENERATED + [os.path.join(ROOT, ".bazelrc")]
    undeclared = {f"{os.path.relpath(f, ROOT)}: @{repo}" for f in sources
                  for repo in named_repositories(read(f)) - declared}
    undeclared |= {f"MODULE.bazel register_toolchains: {label}" for label in module["toolchains"]
                   if named_repositories(f'"{label}"') - declared}
    assert not undeclared, "\n".join(sorted(undeclared))


def test_every_offline_rule_set_is_a_bazel_dep():
    """What WORKSPACE.bazel provides offline (stand-ins or Debian's packages) MODULE.bazel takes from the
    registry, except rule sets only Bazel 4.2.3 itself needs."""
    offline = set(re.findall(r'local_repository\(\s*name = "([^"]+)"', read(os.path.join(ROOT, "WORKSPACE.bazel"))))
    only_bazel_4 = {"rules_java", "remote_coverage_tools"}  # Bazel 7+ brings its own
    assert offline - only_bazel_4 <= set(module_bazel()["deps"])


def test_bazel_dep_versions_are_exact():
    for name, version in module_bazel()["deps"].items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"bazel_dep {name}: {version!r} is not an exact version"


def test_every_rule_is_loaded():
    files = main_repository_files() + GENERATED
    assert len(files) > 20
    problems = [p for f in files for p in unloaded_calls(f)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_an_unloaded_rule(tmp_path):
    bad = tmp_path / "BUILD.bazel"
    bad.write_text('load("@rules_cc//cc:defs.bzl", "cc_library")\n'
                   'cc_library(name = "a")\ncc_binary(name = "b")\n'
                   'def m():\n    native.py_library(name = "c")\n    native.filegroup(name = "d")\n')
    problems = unloaded_calls(str(bad))
    assert len(problems) == 2 and "cc_binary()" in problems[0] and "native.py_library" in problems[1]
    assert named_repositories(bad.read_text()) == {"rules_cc"}


def test_bazel_version_and_empty_workspace_bzlmod():
    major = int(read(os.path.join(ROOT, ".bazelversion")).strip().split(".")[0])
    assert major >= 7, ".bazelversion must name a Bazel with bzlmod (7 or later)"
    code = [line for line in read(os.path.join(ROOT, "WORKSPACE.bzlmod")).splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    assert code == [], "WORKSPACE.bzlmod must stay empty: Bazel 7+ takes everything from MODULE.bazel"
