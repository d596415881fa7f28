#!/usr/bin/python3
"""Matrix normalization side by side in one process: sparsenorm (through its
C interface), sklearn.preprocessing.normalize (Debian's python3-sklearn) and a
plain memory copy, on the same float32 CSR matrix of 1,000,000 x 100,000 with
20,000,000 stored values (int32 indices, uniformly random distinct
coordinates), columns (axis 0) and rows (axis 1), L2 norm.

What each side is asked to do is what a user calls: sparsenorm normalizes in
place; sklearn is called with copy=False. On axis 1 that is in place for
sklearn too; on axis 0 sklearn converts the CSR matrix to CSC (a new matrix
that it returns) whatever `copy` says, and that conversion is most of its
time: it is part of what a sklearn user pays to normalize columns.

Bytes counted per call: every stored value read and written once, every
column index and index pointer read once (they are read to validate the
matrix, and on axis 0 to find each value's column). The copy moves 512 MiB
with every thread (the faster of torch's copy_ and glibc's memcpy, bench/membw.py)
and counts bytes read plus bytes written.
The three are timed in turn within every repetition, so that the ratios
compare measurements taken moments apart on a noisy machine; the figures are
medians over the repetitions of the per-repetition ratios.

Prints a table and ends with
    matrix-cpu-axis0: speedup_vs_sklearn=<x> fraction_of_copy=<y>
    matrix-cpu-axis1: speedup_vs_sklearn=<x> fraction_of_copy=<y>
(matrix-cpu-unsorted-axis0/1 with --unsorted).
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.preprocessing import normalize

import membw
from membw import Copy, Flush
from sparsenorm_ctypes import Library


# The benchmark matrix (the defaults of --rows, --cols and --nnz) and the axes measured.
ROWS, COLS, NNZ = 1000000, 100000, 20000000
AXES = (0, 1)


def benchmark_matrix(rows, cols, nnz, seed=0, unsorted=False):
    """A float32 CSR matrix with exactly nnz distinct coordinates: canonical,
    or with the entries of each row in random order (unsorted=True), as
    SciPy's sparse products return them."""
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(0, rows * cols, size=int(nnz * 1.01) + 1000, dtype=np.int64))
    if keys.size < nnz:
        raise RuntimeError("not enough distinct coordinates drawn")
    drop = rng.choice(keys.size, keys.size - nnz, replace=False)
    keep = np.ones(keys.size, dtype=bool)
    keep[drop] = False
    keys = keys[keep]
    r = keys // cols
    indptr = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(r, minlength=rows), out=indptr[1:])
    indices = (keys % cols).astype(np.int32)
    data = rng.standard_normal(nnz, dtype=np.float32)
    if unsorted:
        order = np.lexsort((rng.random(nnz), r))  # by row, in random order within
        indices, data = indices[order], data[order]
    return sp.csr_matrix((data, indices, indptr), shape=(rows, cols))


def run_axis(sn, x, axis, copy, flush, reps):
    ours_m, theirs_m = x.copy(), x.copy()
    options = sn.matrix_options(axis=axis, norm="l2")
    moved = x.nnz * (4 + 4 + 4) + x.indptr.size * 4
    speedups, fractions, ours_ms, theirs_ms, copy_rates = [], [], [], [], []
    for _ in range(reps):
        copy_rate = copy.rate()
        flush()  # evict the copy's dirty lines before our call
        t = time.perf_counter()
        stats = sn.normalize_sparse_(ours_m, options=options)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        result = normalize(theirs_m, norm="l2", axis=axis, copy=False)
        theirs = time.perf_counter() - t
        del result
        if stats.vectors_scaled == 0:
            raise RuntimeError("nothing was scaled")
        speedups.append(theirs / ours)
        fractions.append(moved / ours / copy_rate)
        ours_ms.append(ours * 1e3)
        theirs_ms.append(theirs * 1e3)
        copy_rates.append(copy_rate)
    # Both must agree: one fresh call each on the original matrix.
    mine = x.copy()
    sn.normalize_sparse_(mine, options=options)
    mine.sort_indices()
    expected = normalize(x, norm="l2", axis=axis).tocsr()
    expected.sort_indices()
    if not (np.array_equal(mine.indices, expected.indices) and
            np.allclose(mine.data, expected.data, rtol=1e-5, atol=0)):
        raise RuntimeError(f"axis {axis}: results differ from sklearn")
    med = statistics.median
    return med(ours_ms), med(theirs_ms), med(speedups), med(fractions), med(copy_rates), moved


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True, help="path to libsparsenorm_c.so")
    ap.add_argument("--reps", type=int, default=11)
    ap.add_argument("--rows", type=int, default=ROWS)
    ap.add_argument("--cols", type=int, default=COLS)
    ap.add_argument("--nnz", type=int, default=NNZ)
    ap.add_argument("--unsorted", action="store_true",
                    help="columns of each row in random order (a non-canonical matrix); "
                    "the summary lines then read matrix-cpu-unsorted-axis<k>")
    args = ap.parse_args()

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    sn = Library(args.lib)
    copy = Copy(threads)
    flush = Flush()
    t = time.perf_counter()
    x = benchmark_matrix(args.rows, args.cols, args.nnz, unsorted=args.unsorted)
    kind = "non-canonical (unsorted rows) " if args.unsorted else ""
    print(f"float32 {kind}CSR {args.rows} x {args.cols}, {x.nnz} stored values, int32 indices "
          f"(built in {time.perf_counter() - t:.1f} s); sparsenorm {sn.version()}, {threads} threads; "
          f"sklearn normalize(copy=False); medians of {args.reps} repetitions; " +
          membw.DEFINITION)
    print(f"{'case':10s} {'ours ms':>8s} {'sklearn ms':>11s} {'speedup':>8s} {'MB moved':>9s} "
          f"{'ours GB/s':>10s} {'copy GB/s':>10s} {'of copy':>8s}")
    summary = []
    for axis in AXES:
        ours, theirs, speedup, fraction, copy_rate, moved = run_axis(sn, x, axis, copy, flush, args.reps)
        print(f"{'axis ' + str(axis):10s} {ours:8.1f} {theirs:11.1f} {speedup:8.1f} {moved / 1e6:9.0f} "
              f"{moved / ours / 1e6:10.1f} {copy_rate / 1e9:10.1f} {fraction:8.2f}", flush=True)
        summary.append((axis, speedup, fraction))
    name = "matrix-cpu-unsorted" if args.unsorted else "matrix-cpu"
    for axis, speedup, fraction in summary:
        print(f"{name}-axis{axis}: speedup_vs_sklearn={speedup:.1f} fraction_of_copy={fraction:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
