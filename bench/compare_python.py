#!/usr/bin/python3
"""What calling sparsenorm from Python costs over the C++ call itself.

Both run in one process on the same data. The Python side is the public
call, sparsenorm.normalize_rows_(table, indices, max_norm), timed from Python
around the whole call (argument checks, DLPack export, GIL release, building
the statistics). The C++ side is sparsenorm::NormalizeRows alone, timed
inside C++ by the module's private entry point _core.timed_normalize_rows
(a steady_clock around the library call, nothing else).

Large case (the core benchmark's headline): float32, 1,000,000 x 128,
100,000 uniform indices. Each side has its own table with the same contents;
each repetition draws fresh indices and lowers max_norm (0.8x per step) below
every row norm, so every distinct row is read and rescaled by both. The cache
is flushed before each call and the order of the two calls alternates from
one repetition to the next; the figures are medians, the ratio the median of
the per-repetition ratios. Which table each side works on alternates as well
(both see the same calls), and they must be bit-identical at the end. The
table is passed as a NumPy array and, in a second case, as a PyTorch tensor
(torch.from_numpy over the same kind of memory).

Small case: a 1,000 x 16 table and one index, thousands of calls: the fixed
cost of a call from Python, in microseconds.

Ends with the summary line
    python-cpu: python_over_cxx=<ratio> overhead_us=<microseconds>
(the ratio of the large NumPy case; the per-call overhead of the small one).
"""

import argparse
import statistics
import sys
import time

import numpy as np


def python_side(sn, table, idx, max_norm):
    t = time.perf_counter()
    stats = sn.normalize_rows_(table, idx, max_norm)
    return time.perf_counter() - t, stats


def cxx_side(sn, table, idx, max_norm):
    seconds, stats = sn._core.timed_normalize_rows(table.__dlpack__(), idx.__dlpack__(), max_norm)
    return seconds, sn.RowStats(*stats)


LARGE_ROWS, LARGE_COLS, LARGE_COUNT = 1_000_000, 128, 100_000


class LargeCase:
    """The large case's data, and one repetition of it at a time."""

    def __init__(self, rng, as_torch):
        rows, cols = LARGE_ROWS, LARGE_COLS
        self.rng = rng
        self.tables = [rng.standard_normal((rows, cols), dtype=np.float32)]
        self.tables.append(self.tables[0].copy())
        if as_torch:
            import torch

            self.wrap = torch.from_numpy
        else:
            self.wrap = (lambda a: a)
        self.targets = [self.wrap(t) for t in self.tables]
        self.flush = np.ones(16 << 20, dtype=np.float32)  # 64 MiB, more than the last-level cache
        self.max_norm = float(np.sqrt(cols)) * 0.25  # below every row norm (about sqrt(cols))

    def repetition(self, sn, rep):
        """Both calls of repetition `rep` (from 0): seconds of the Python
        call and of the C++ call."""
        tables, targets, max_norm = self.tables, self.targets, self.max_norm
        idx = self.rng.integers(0, LARGE_ROWS, size=LARGE_COUNT, dtype=np.int64)
        py_idx = self.wrap(idx)
        times, stats = {}, {}
        # Both tables see the same calls, so they stay equal; which side
        # works on which table alternates too, as does the order.
        mine = rep // 2 % 2
        for side in (("py", "cxx") if rep % 2 == 0 else ("cxx", "py")):
            self.flush.sum()
            if side == "py":
                times[side], stats[side] = python_side(sn, targets[mine], py_idx, max_norm)
            else:
                times[side], stats[side] = cxx_side(sn, tables[1 - mine], idx, max_norm)
        if stats["py"] != stats["cxx"] or stats["py"].rows_scaled != stats["py"].distinct_rows:
            raise RuntimeError(f"the two calls did different work: {stats}")
        self.max_norm *= 0.8
        return times["py"], times["cxx"]

    def check(self):
        if not np.array_equal(self.tables[0], self.tables[1]):
            raise RuntimeError("the Python and the C++ calls left different tables")


def large_case(sn, rng, reps, as_torch):
    case = LargeCase(rng, as_torch)
    py_ms, cxx_ms, ratios = [], [], []
    for rep in range(reps):
        py, cxx = case.repetition(sn, rep)
        py_ms.append(py * 1e3)
        cxx_ms.append(cxx * 1e3)
        ratios.append(py / cxx)
    case.check()
    med = statistics.median
    return med(cxx_ms), med(py_ms), med(ratios)


def small_case(sn, calls):
    table = np.ones((1000, 16), dtype=np.float32)
    idx = np.array([7], dtype=np.int64)
    sides = {"C++": lambda: cxx_side(sn, table, idx, 1.0)[0],
             "numpy": lambda: python_side(sn, table, idx, 1.0)[0]}
    try:
        import torch

        t, t_idx = torch.from_numpy(table), torch.from_numpy(idx)
        sides["torch"] = lambda: python_side(sn, t, t_idx, 1.0)[0]
    except ImportError:
        pass
    samples = {k: [] for k in sides}
    for rep in range(calls):
        for name in (sides if rep % 2 == 0 else reversed(list(sides))):
            samples[name].append(sides[name]() * 1e6)
    return {k: statistics.median(v) for k, v in samples.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", required=True,
                    help="directory holding the sparsenorm package (<build>/python)")
    ap.add_argument("--reps", type=int, default=51)
    ap.add_argument("--calls", type=int, default=3000, help="calls in the small case")
    ap.add_argument("--quick", action="store_true", help="the NumPy case only, fewer calls")
    args = ap.parse_args()
    sys.path.insert(0, args.module)
    import sparsenorm

    rng = np.random.default_rng(0)
    print(f"sparsenorm {sparsenorm.__version__} ({sparsenorm.simd_target()}), "
          f"{sparsenorm.default_thread_count()} threads; medians of {args.reps} repetitions; "
          "C++ = NormalizeRows timed inside C++, Python = the public call timed from Python")
    print(f"{'case':48s} {'C++ ms':>8s} {'Python ms':>10s} {'Python/C++':>11s}")
    headline = None
    for as_torch in ([False] if args.quick else [False, True]):
        cxx, py, ratio = large_case(sparsenorm, rng, args.reps, as_torch)
        name = "float32 1000000x128, 100000 idx, " + ("torch tensor" if as_torch else
                                                       "numpy array")
        print(f"{name:48s} {cxx:8.2f} {py:10.2f} {ratio:11.3f}", flush=True)
        headline = headline or ratio
    calls = args.calls // 10 if args.quick else args.calls
    small = small_case(sparsenorm, calls)
    print(f"one call on a 1000x16 table with 1 index, median of {calls}: " +
          ", ".join(f"{k} {v:.1f} us" for k, v in small.items()))
    print(f"python-cpu: python_over_cxx={headline:.3f} "
          f"overhead_us={small['numpy'] - small['C++']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
