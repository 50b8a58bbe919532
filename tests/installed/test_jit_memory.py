"""Host modules are linked by JITLink into packed JIT memory (docs/ARCHITECTURE.md "Host linking and
JIT memory"): small modules share pages, freed space is reused without disturbing live code, globals
stay per module, and a fork()ed child owns a private copy."""

import gc
import os

import proteus

PAGE = os.sysconf("SC_PAGE_SIZE")


def mappings():
    with open("/proc/self/maps") as f:
        return sum(1 for _ in f)


def adder(n, tag):
    return proteus.compile('extern "C" int add(int x) { return x + %d; } // %s' % (n, tag)).get_function(
        "add", proteus.i32, [proteus.i32])


def test_small_modules_share_pages():
    adder(0, "warm-up")
    before = mappings()
    functions = [adder(i, "pages") for i in range(64)]
    pages = {f.address // PAGE for f in functions}
    assert [f(1) for f in functions] == [i + 1 for i in range(64)]
    assert len(pages) <= 4, f"64 one-line modules took {len(pages)} code pages"
    assert mappings() - before < 8  # JITLink's own manager took two mappings per module


def test_freed_space_is_reused_and_live_code_is_untouched():
    kept = [adder(i, "kept") for i in range(0, 40, 2)]
    dropped = [adder(i, "dropped") for i in range(1, 40, 2)]
    dropped_addresses = {f.address for f in dropped}
    del dropped
    gc.collect()
    again = [adder(1000 + i, "again") for i in range(20)]
    assert {f.address for f in again} & dropped_addresses  # the freed places are used again
    assert [f(0) for f in kept] == list(range(0, 40, 2))
    assert [f(0) for f in again] == [1000 + i for i in range(20)]


def test_globals_and_constants_stay_per_module():
    source = '''
        static const double table[4] = {1.5, 2.5, 3.5, %d.5};
        extern "C" { int counter = %d; int bump() { return ++counter; } double pick(int i) { return table[i & 3]; } }
    '''
    modules = [proteus.compile(source % (i, i * 100)) for i in range(8)]
    bumps = [m.get_function("bump", proteus.i32, []) for m in modules]
    picks = [m.get_function("pick", proteus.f64, [proteus.i32]) for m in modules]
    assert [b() for b in bumps] == [i * 100 + 1 for i in range(8)]
    assert [b() for b in bumps] == [i * 100 + 2 for i in range(8)]
    assert [p(3) for p in picks] == [i + 0.5 for i in range(8)] and picks[5](0) == 1.5


def test_exceptions_unwind_through_packed_code():
    modules = [proteus.compile('''
        #include <stdexcept>
        static int inner(int x) { if (x < 0) throw std::runtime_error("negative %d"); return x; }
        extern "C" int outer(int x) { try { return inner(x); } catch (const std::exception&) { return -%d; } }
    ''' % (i, i)) for i in range(1, 6)]
    outers = [m.get_function("outer", proteus.i32, [proteus.i32]) for m in modules]
    assert [f(-1) for f in outers] == [-i for i in range(1, 6)]
    assert [f(7) for f in outers] == [7] * 5


def test_a_forked_child_has_its_own_copy():
    parent_code = [adder(i, "before fork") for i in range(10)]
    pid = os.fork()
    if pid == 0:  # the child: new modules land where the parent may place its own next
        ok = False
        try:
            child_code = [adder(500 + i, "child") for i in range(30)]
            ok = [f(0) for f in child_code] == [500 + i for i in range(30)]
            ok = ok and [f(0) for f in parent_code] == list(range(10))
        finally:
            os._exit(0 if ok else 1)
    more = [adder(700 + i, "parent") for i in range(30)]
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [f(0) for f in parent_code] == list(range(10))
    assert [f(0) for f in more] == [700 + i for i in range(30)]
