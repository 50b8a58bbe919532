"""8 threads compiling distinct and identical sources at once give correct results."""

import threading

import proteus


def test_concurrent_compiles():
    results, errors = {}, []

    def work(tid):
        try:
            for i in range(6):
                distinct = 'extern "C" int f(int x) { return x * %d + %d; }' % (tid + 2, i)
                same = 'extern "C" int shared_fn(int x) { return x + 1000; }'
                a = proteus.compile(distinct).get_function("f", proteus.i32, [proteus.i32])
                b = proteus.compile(same).get_function("shared_fn", proteus.i32, [proteus.i32])
                results[(tid, i)] = (a(10), b(1))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 48
    for (tid, i), (a, b) in results.items():
        assert a == 10 * (tid + 2) + i and b == 1001


def test_calls_release_the_gil():
    src = 'extern "C" void spin(long n) { volatile long s = 0; for (long i = 0; i < n; ++i) s += i; }'
    spin = proteus.compile(src).get_function("spin", None, [proteus.i64])
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(1)

    t = threading.Thread(target=ticker)
    t.start()
    spin(300_000_000)
    stop.set()
    t.join()
    assert len(ticks) > 100  # the other thread ran while compiled code held no GIL


def test_first_function_of_a_new_signature_from_many_threads():
    """Threads racing to create the first Function of a signature all get a live call thunk."""
    import itertools

    c_type = {proteus.f64: "double", proteus.i64: "long", proteus.i32: "int"}
    value = {proteus.f64: 1.5, proteus.i64: 2, proteus.i32: 3}
    # 4-argument signatures of f64/i64/i32 mixes that no other test uses: each round's threads race on
    # a call thunk that does not exist yet.
    for n, argtypes in enumerate(list(itertools.product([proteus.f64, proteus.i64, proteus.i32], repeat=4))[:16]):
        params = ", ".join(f"{c_type[t]} a{i}" for i, t in enumerate(argtypes))
        mod = proteus.compile(f'extern "C" double mix{n}({params}) {{ return a0 + a1 + a2 + a3; }}')
        args = [value[t] for t in argtypes]
        barrier = threading.Barrier(8)
        results, errors = [], []

        def work():
            try:
                barrier.wait()
                results.append(mod.get_function(f"mix{n}", proteus.f64, list(argtypes))(*args))
            except Exception as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        assert results == [float(sum(args))] * 8, (argtypes, results)


def test_a_buffer_argument_cannot_be_resized_while_the_call_runs():
    """The call holds its buffer arguments exported: another thread's resize fails with BufferError
    (it used to free the memory the compiled code was writing into), and works again afterwards."""
    src = ('extern "C" void fill(char* p, long n, long spins) {'
           '  volatile long s = 0; for (long i = 0; i < spins; ++i) s += i;'
           '  for (long i = 0; i < n; ++i) p[i] = 7; }')
    fill = proteus.compile(src).get_function("fill", None, [proteus.ptr, proteus.i64, proteus.i64])
    buf = bytearray(1 << 16)
    calling, outcome = threading.Event(), []

    def resize():
        calling.wait()
        import time
        time.sleep(0.1)  # the call is spinning now, without the GIL
        try:
            buf.extend(b"x" * (1 << 20))
            outcome.append("resized")
        except BufferError:
            outcome.append("refused")

    t = threading.Thread(target=resize)
    t.start()
    calling.set()
    fill(buf, len(buf), 1_500_000_000)
    t.join()
    assert outcome == ["refused"]
    assert buf == bytearray([7]) * (1 << 16)
    buf.extend(b"x")  # released after the call
    assert len(buf) == (1 << 16) + 1
