#!/usr/bin/python3
"""Row operator side by side in one process: sparsenorm (through its C
interface), torch.embedding_renorm_ (Debian's python3-torch) and a plain
memory copy, on the same data and the same machine.

Bytes counted per call: each distinct row read once, each scaled row written
once, the index list read once. The copy moves 512 MiB with every thread
(the faster of torch's copy_ and glibc's memcpy) and counts bytes read plus
bytes written. The three are
timed in turn within every repetition, so that the ratios compare
measurements taken moments apart on this noisy machine; the figures are
medians over the repetitions.

Each repetition draws fresh indices and uses a max_norm below every row norm
left by the previous one (0.8x per step), so every distinct row is read and
rescaled by both libraries on every call. The tables are NumPy arrays (NumPy
asks Linux for transparent huge pages on large arrays), shared zero-copy
with torch through torch.from_numpy. Both libraries must agree at the end.

Prints a table and ends with
    rows-cpu: speedup_vs_torch=<x> fraction_of_copy=<y>
for the headline case: float32, 1,000,000 x 128, 100,000 uniform indices.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch

from membw import Copy, Flush
from sparsenorm_ctypes import Library


def numpy_empty(shape, dtype):
    """An uninitialized torch tensor whose memory NumPy allocated."""
    if dtype == torch.bfloat16:  # NumPy has no bfloat16: same-size storage, viewed
        return torch.from_numpy(np.empty(shape, dtype=np.int16)).view(torch.bfloat16)
    return torch.from_numpy(np.empty(shape, dtype=torch.empty(0, dtype=dtype).numpy().dtype))


# Largest difference allowed between two results, relative to the largest value.
TOLERANCES = {torch.float32: 1e-6, torch.float64: 1e-12, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
# Each repetition lowers max_norm by this factor, so every distinct row is rescaled again.
MAX_NORM_STEP = 0.8


def case_list(quick):
    """The cases as (dtype, rows, cols, index count, hot rows or 0), headline first."""
    f32, f16, bf16 = torch.float32, torch.float16, torch.bfloat16
    cases = [(f32, 1000000, 128, 100000, 0)]
    if not quick:
        cases += [(f32, 1000000, 16, 100000, 0), (f32, 1000000, 64, 100000, 0),
                  (f32, 1000000, 512, 100000, 0), (f16, 1000000, 128, 100000, 0),
                  (bf16, 1000000, 128, 100000, 0), (f32, 1000000, 128, 100000, 5000)]
    return cases


def case_name(dtype, rows, cols, count, hot):
    return f"{str(dtype).replace('torch.', '')} {rows}x{cols}, {count} idx" + (
        f" over {hot} rows" if hot else "")


def random_table(dtype, rows, cols, rng):
    """A NumPy-backed table of standard normal values (rounded to dtype)."""
    table = numpy_empty((rows, cols), dtype)
    table.copy_(torch.from_numpy(rng.standard_normal((rows, cols), dtype=np.float32)))
    return table


def first_max_norm(cols):
    return float(np.sqrt(cols)) * 0.25  # below every row norm (about sqrt(cols))


def draw_indices(rng, rows, count, hot):
    return torch.from_numpy(rng.integers(0, hot if hot else rows, size=count, dtype=np.int64))


def run_case(sn, copy, flush, dtype, rows, cols, count, reps, hot, rng):
    ours_table = random_table(dtype, rows, cols, rng)
    torch_table = numpy_empty((rows, cols), dtype)
    torch_table.copy_(ours_table)
    max_norm = first_max_norm(cols)
    speedups, fractions, ours_ms, torch_ms, copy_rates = [], [], [], [], []
    for _ in range(reps):
        idx = draw_indices(rng, rows, count, hot)
        copy_rate = copy.rate()
        # Replace the copy's dirty cache lines with clean ones, so that our
        # call does not pay for writing back the copy's output. Our call runs
        # before torch's: torch leaves the same rows in the cache.
        flush()
        t = time.perf_counter()
        stats = sn.embedding_renorm_(ours_table, idx, max_norm)
        ours = time.perf_counter() - t
        t = time.perf_counter()
        torch.embedding_renorm_(torch_table, idx, max_norm, 2.0)
        theirs = time.perf_counter() - t
        if stats.rows_scaled != stats.distinct_rows:
            raise RuntimeError(f"only {stats.rows_scaled} of {stats.distinct_rows} rows were scaled")
        moved = (stats.distinct_rows + stats.rows_scaled) * cols * ours_table.element_size() + count * 8
        speedups.append(theirs / ours)
        fractions.append(moved / ours / copy_rate)
        ours_ms.append(ours * 1e3)
        torch_ms.append(theirs * 1e3)
        copy_rates.append(copy_rate)
        max_norm *= MAX_NORM_STEP
    diff = (ours_table.double() - torch_table.double()).abs().max().item()
    scale = torch_table.double().abs().max().item()
    tol = TOLERANCES[dtype]
    if not diff <= tol * scale:
        raise RuntimeError(f"{dtype}: results differ from torch by {diff} (scale {scale})")
    med = statistics.median
    return med(ours_ms), med(torch_ms), med(speedups), med(fractions), med(copy_rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True, help="path to libsparsenorm_c.so")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="the headline case only")
    args = ap.parse_args()

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    sn = Library(args.lib)
    rng = np.random.default_rng(0)
    copy = Copy(threads)
    flush = Flush()

    cases = case_list(args.quick)
    print(f"torch {torch.__version__}, {threads} threads, medians of {args.reps} repetitions; "
          "copy = the faster of torch copy_ and memcpy on every thread, 512 MiB, bytes read + written")
    print(f"{'case':44s} {'ours ms':>8s} {'torch ms':>9s} {'speedup':>8s} {'copy GB/s':>10s} {'of copy':>8s}")
    summary = []
    for dtype, rows, cols, count, hot in cases:
        ours, theirs, speedup, fraction, copy_rate = run_case(sn, copy, flush, dtype, rows, cols, count,
                                                         args.reps, hot, rng)
        name = case_name(dtype, rows, cols, count, hot)
        print(f"{name:44s} {ours:8.2f} {theirs:9.1f} {speedup:8.1f} {copy_rate / 1e9:10.1f} {fraction:8.2f}",
              flush=True)
        summary.append((speedup, fraction))
    speedup, fraction = summary[0]
    print(f"rows-cpu: speedup_vs_torch={speedup:.1f} fraction_of_copy={fraction:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
