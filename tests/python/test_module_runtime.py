"""The module at run time: the GIL is released during the computation, calls from
several threads are safe, and the documentation reads well and is right."""

import doctest
import inspect
import pydoc
import threading
import time

import numpy as np
import pytest

import sparsenorm


def call_with_ticker(rows):
    """One call of the scalar reference backend (p = 3: a pow per element, on
    one thread) while another Python thread records the time every half
    millisecond; returns the call's start, end and the ticks."""
    table = np.random.default_rng(0).standard_normal((rows, 512))
    ticks = []
    stop = threading.Event()

    def ticker():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.0005)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        time.sleep(0.02)
        start = time.perf_counter()
        stats = sparsenorm.normalize_rows_(table, np.arange(rows), 0.5, p=3.0, num_threads=1,
                                           backend="reference")
        end = time.perf_counter()
    finally:
        stop.set()
        thread.join()
    assert stats.rows_scaled == rows
    return start, end, ticks


def test_another_python_thread_runs_during_a_long_call():
    rows = 1000
    start, end, ticks = call_with_ticker(rows)
    while end - start < 0.1 and rows < 64000:  # long enough on any machine
        rows *= 2
        start, end, ticks = call_with_ticker(rows)
    duration = end - start
    # Ticks in the middle half of the call: none at all if the GIL were held.
    middle = [t for t in ticks if start + duration / 4 < t < end - duration / 4]
    assert len(middle) >= 2, f"{len(middle)} ticks during a {duration:.3f} s call"


def test_calls_from_several_threads_at_once():
    rng = np.random.default_rng(1)
    bases = [rng.standard_normal((2000, 64)).astype(np.float32) for _ in range(4)]
    idx = [rng.integers(0, 2000, size=3000) for _ in range(4)]
    expected = []
    for b, i in zip(bases, idx):
        t = b.copy()
        sparsenorm.normalize_rows_(t, i, 0.5)
        expected.append(t)
    results = [b.copy() for b in bases]
    errors = []

    def work(k):
        try:
            for _ in range(5):
                results[k][...] = bases[k]
                sparsenorm.normalize_rows_(results[k], idx[k], 0.5, num_threads=1)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r, e in zip(results, expected):
        assert np.array_equal(r, e)


@pytest.mark.parametrize("function", [sparsenorm.normalize_rows_, sparsenorm.set_row_norms_,
                                      sparsenorm.embedding_renorm_, sparsenorm.normalize])
def test_docstring_examples(function):
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = doctest.DocTestFinder().find(function, function.__name__, globs={})
    for test in tests:
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


@pytest.mark.parametrize("function,signature,formula", [
    (sparsenorm.normalize_rows_,
     "normalize_rows_(table, indices, max_norm=1.0, p=2.0, eps=1e-12, *, non_finite='skip', "
     "num_threads=None, backend='auto')",
     "table[r, :] *= max_norm / (n + eps)"),
    (sparsenorm.set_row_norms_,
     "set_row_norms_(table, indices, norm=1.0, p=2.0, eps=1e-12, *",
     "table[r, :] *= norm / (n + eps)"),
    (sparsenorm.embedding_renorm_,
     "embedding_renorm_(weight, indices, max_norm, norm_type=2.0, *",
     "weight[r, :] *= max_norm / (n + 1e-7)"),
    (sparsenorm.normalize,
     "normalize(X, norm='l2', *, axis=0, copy=False, max_norm=None, eps=0.0",
     "X[:, j] *= 1 / (n + eps)"),
])
def test_help_reads_well(function, signature, formula):
    text = pydoc.render_doc(function, renderer=pydoc.plaintext)
    assert "in module sparsenorm" in text.splitlines()[0]
    # help() prints the type hints too; the names, order and defaults are what a reader needs.
    plain = inspect.signature(function)
    plain = plain.replace(
        parameters=[q.replace(annotation=inspect.Parameter.empty) for q in plain.parameters.values()],
        return_annotation=inspect.Signature.empty)
    assert signature in function.__name__ + str(plain)
    assert function.__name__ + "(" + next(iter(plain.parameters)) + ": " in text
    assert formula in text
    for section in ("Parameters\n", "Returns\n", "Raises\n", "Examples\n"):
        assert section in text
    assert max(len(line) for line in function.__doc__.splitlines()) <= 96


def test_package_help_lists_the_functions():
    text = pydoc.render_doc(sparsenorm, renderer=pydoc.plaintext)
    for name in ("normalize_rows_", "set_row_norms_", "embedding_renorm_", "normalize"):
        assert name in text
