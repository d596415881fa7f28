#!/usr/bin/python3
"""The optimizer step with the max-norm constraint, side by side in one
process: sparsenorm's fused step, sparsenorm's step followed by its row
operator (unfused), torch.optim followed by torch.embedding_renorm_, and the
access-pattern ceiling of the step (bench/touch_step.h), on the same data.

Case: a float32 table of 1,000,000 x 128 (elements uniform in [-1, 1), row
norms about 6.5), a batch of 100,000 indices of Zipf popularity
(bench/zipf_batch.h: about 24,000 distinct rows, the most popular named
about 12,000 times), one gradient row per index (uniform in [-1, 1)), max-norm 1 with torch's eps (1e-7),
non-finite gradient rows skipped (the default). Each optimizer with its
torch defaults (SGD: lr 0.01, which torch requires):
  sgd              torch.optim.SGD
  adagrad          torch.optim.Adagrad
  rowwise_adagrad  FBGEMM's row-wise Adagrad; torch has none, so its torch
                   time is torch.optim.Adagrad's (the nearest a torch user has)
  sparse_adam      torch.optim.SparseAdam
torch's side: an nn.Parameter over its own copy of the table, given the
gradient as a sparse COO tensor of the same indices and values, uncoalesced
as nn.Embedding(sparse=True) makes it; optimizer.step(), then
torch.embedding_renorm_ on the batch's rows under no_grad. Every side's
state starts at zero. After the repetitions the fused and unfused tables
and states must agree with each other and (but for row-wise Adagrad) with
torch's.

Bytes counted per step (the fewest that must move): every gradient row and
the index list read once; every distinct row and its state read and written
once. The ceiling moves exactly these (plus the repeat sums of the popular
rows, as the step does), in the step's order, on as many threads, with
trivial arithmetic and the grouping done beforehand (so the sort is part of
what separates the step from its ceiling). It runs on the unfused side's
arrays with factor 0, which leaves them unchanged.

Within each repetition the four are timed in turn, in an order that rotates
from one repetition to the next, each after a cache flush; the copy
bandwidth (bench/membw.py) is measured once per repetition. Figures are
medians, ratios medians of per-repetition ratios.

The breakdown, timed in the same rotation: the CPU path's grouping of the
index list alone (src/cpu/group_rows.h, which the ceiling leaves out) and
the ceiling's gradient sums alone (no table, no state). What the fused step
takes beyond grouping + ceiling is its own: the update's arithmetic, the
finiteness check, the norm, the scratch rows and the set-up of a call.

Also printed: the fastest repetition of every call (the least disturbed
on a shared machine). --thread-probe REPS instead times the fused SGD and
Adagrad steps, the ceiling and the grouping on one thread and on all,
interleaved: on a busy machine each parallel region can wait for a
preempted thread (compare runs with OMP_WAIT_POLICY=passive).

A second case repeats Adagrad with D = 512 (fused, unfused and ceiling
only, on one shared table: 2 GB each for the table and its state), where
the distinct rows (49 MB, and as much again for their state) no longer fit
in the last-level cache, so that the unfused call's second pass over the
rows goes to memory.

Ends with one line per optimizer and one for D = 512:
    optim-cpu-<name>: speedup_vs_torch=<x> fused_over_unfused=<y> fraction_of_ceiling=<z>
    optim-cpu-fusion-d512: fused_over_unfused=<y>
(fused_over_unfused is the unfused time over the fused time.)
"""

import argparse
import ctypes
import os
import statistics
import sys
import time

import numpy as np
import torch

from membw import DEFINITION, Copy, Flush

ROWS, COUNT = 1_000_000, 100_000
ZIPF_EXPONENT, BATCH_SEED = 1.1, 7  # as bench/optim_bench.cc
MAX_NORM, NORM_EPS = 1.0, 1e-7  # torch.embedding_renorm_'s eps
OPTIMIZERS = ("sgd", "adagrad", "rowwise_adagrad", "sparse_adam")
LR = {"sgd": 0.01, "adagrad": 0.01, "rowwise_adagrad": 0.01, "sparse_adam": 1e-3}
# Largest difference allowed between two sides' tables or states, relative to
# the largest magnitude: the sides sum a row's repeats in different orders.
TOLERANCE = 1e-4


class StepBench:
    """ctypes binding of the benchmark support library (bench/zipf_batch.h,
    bench/touch_step.h)."""

    def __init__(self, path):
        lib = ctypes.CDLL(path)
        i64, f32p = ctypes.c_int64, ctypes.POINTER(ctypes.c_float)
        lib.sparsenorm_bench_zipf_batch.argtypes = [i64, i64, ctypes.c_double, ctypes.c_uint64, ctypes.c_void_p]
        lib.sparsenorm_bench_fill_uniform.argtypes = [ctypes.c_void_p, i64, ctypes.c_float, ctypes.c_uint64]
        lib.sparsenorm_bench_group_rows.restype = i64
        lib.sparsenorm_bench_group_rows.argtypes = [ctypes.c_void_p, i64, i64, ctypes.c_int]
        lib.sparsenorm_bench_touch_plan.restype = ctypes.c_void_p
        lib.sparsenorm_bench_touch_plan.argtypes = [ctypes.c_void_p, i64]
        for f in (lib.sparsenorm_bench_touch_distinct, lib.sparsenorm_bench_touch_long_groups):
            f.restype = i64
            f.argtypes = [ctypes.c_void_p]
        lib.sparsenorm_bench_touch_run.argtypes = [ctypes.c_void_p, f32p, i64, f32p, i64, f32p, i64, f32p,
                                                   ctypes.c_float, ctypes.c_int]
        lib.sparsenorm_bench_touch_free.argtypes = [ctypes.c_void_p]
        self.lib = lib

    def zipf_batch(self, count, rows, exponent, seed):
        out = np.empty(count, dtype=np.int64)
        self.lib.sparsenorm_bench_zipf_batch(count, rows, exponent, seed, out.ctypes.data)
        return out

    def uniform(self, shape, seed):
        """float32 uniform in [-1, 1), filled on every thread (numpy's
        generators take seconds for the 2 GB tables)."""
        out = np.empty(shape, dtype=np.float32)
        self.lib.sparsenorm_bench_fill_uniform(out.ctypes.data, out.size, 1.0, seed)
        return out

    def group_rows(self, indices, rows, threads):
        """The CPU path's grouping alone; returns the distinct rows."""
        return self.lib.sparsenorm_bench_group_rows(indices.ctypes.data, len(indices), rows, threads)


class Ceiling:
    """The step's access-pattern ceiling for one index list."""

    def __init__(self, bench, indices, threads):
        self.lib, self.threads = bench.lib, threads
        self.plan = self.lib.sparsenorm_bench_touch_plan(indices.ctypes.data, len(indices))
        self.distinct = self.lib.sparsenorm_bench_touch_distinct(self.plan)
        self.long_groups = self.lib.sparsenorm_bench_touch_long_groups(self.plan)

    def __call__(self, table, state, values):
        """One pass over `table` and its state arrays (np.float32, row-major),
        factor 0; with table None and no state, the gradient sums alone."""
        def ptr(a):
            return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float)) if a is not None else None

        s = list(state) + [None] * (2 - len(state))
        cols = [a.size // a.shape[0] if a is not None else 0 for a in s]
        self.lib.sparsenorm_bench_touch_run(self.plan, ptr(table), values.shape[1], ptr(s[0]), cols[0],
                                            ptr(s[1]), cols[1], ptr(values), 0.0, self.threads)

    def __del__(self):
        self.lib.sparsenorm_bench_touch_free(self.plan)


class OurStep:
    """sparsenorm's step: the public functions sparsenorm.optim.<name>_ where
    the package has them, else the binding they wrap (_core.optimizer_step,
    python/src/module.cc), with the same defaults."""

    KIND = {"sgd": 0, "adagrad": 1, "rowwise_adagrad": 2, "sparse_adam": 3}
    EPS = {"sgd": 0.0, "adagrad": 1e-10, "rowwise_adagrad": 1e-8, "sparse_adam": 1e-8}
    # WeightDecayMode: row-wise Adagrad's default is FBGEMM's NONE, the others' L2.
    DECAY_MODE = {"sgd": 1, "adagrad": 1, "rowwise_adagrad": 0, "sparse_adam": 1}

    def __init__(self, sn):
        self.sn = sn
        self.public = hasattr(sn, "optim")
        self.how = "sparsenorm.optim" if self.public else "sparsenorm._core.optimizer_step"

    def __call__(self, name, table, state, indices, values, step, max_norm, num_threads=0):
        """num_threads 0: every core."""
        if self.public:
            kw = {"lr": LR[name], "num_threads": num_threads}
            if max_norm is not None:
                kw.update(max_norm=max_norm, norm_eps=NORM_EPS)
            if name == "sparse_adam":
                kw["step"] = step
            return getattr(self.sn.optim, name + "_")(table, *state, indices, values, **kw)
        numbers = [LR[name], self.EPS[name], 0.0, 0.0, 0.9, 0.999,
                   max_norm if max_norm is not None else 1.0, 2.0, NORM_EPS]
        codes = [self.KIND[name], self.DECAY_MODE[name], 0, step, 1 if max_norm is not None else 0,
                 0, 0, 0, num_threads, 0]
        # The binding takes row-wise Adagrad's sums as a rows x 1 table.
        capsules = tuple(s.reshape(s.shape[0], -1).__dlpack__() for s in state)
        stats = self.sn._core.optimizer_step(table.__dlpack__(), capsules, indices.__dlpack__(),
                                             values.__dlpack__(), numbers, codes)
        return self.sn.RowStats(*stats)


def zeros(shape):
    """Zeros in memory already mapped (np.zeros would map it on first touch,
    inside a timed call)."""
    a = np.empty(shape, dtype=np.float32)
    a.fill(0)
    return a


def our_state(name, cols):
    return {"sgd": [], "adagrad": [zeros((ROWS, cols))], "rowwise_adagrad": [zeros(ROWS)],
            "sparse_adam": [zeros((ROWS, cols)), zeros((ROWS, cols))]}[name]


def bytes_moved(name, cols, distinct):
    state = {"sgd": 0, "adagrad": cols, "rowwise_adagrad": 1, "sparse_adam": 2 * cols}[name]
    return 4 * COUNT * cols + 8 * COUNT + 2 * 4 * distinct * (cols + state)


class TorchSide:
    """torch.optim on an nn.Parameter over `table`, then embedding_renorm_."""

    def __init__(self, name, table, indices, values):
        self.param = torch.nn.Parameter(torch.from_numpy(table))
        lr = LR[name]
        self.opt = {"sgd": lambda p: torch.optim.SGD(p, lr=lr),
                    "adagrad": lambda p: torch.optim.Adagrad(p, lr=lr),
                    "rowwise_adagrad": lambda p: torch.optim.Adagrad(p, lr=lr),
                    "sparse_adam": lambda p: torch.optim.SparseAdam(p, lr=lr)}[name]([self.param])
        self.indices = torch.from_numpy(indices)
        self.grad = torch.sparse_coo_tensor(self.indices.unsqueeze(0), torch.from_numpy(values),
                                            self.param.shape)
        assert not self.grad.is_coalesced()

    def __call__(self):
        """Seconds of the step and of the renorm."""
        self.param.grad = self.grad
        t0 = time.perf_counter()
        self.opt.step()
        t1 = time.perf_counter()
        with torch.no_grad():
            torch.embedding_renorm_(self.param, self.indices, MAX_NORM, 2.0)
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    def state(self, name):
        s = self.opt.state[self.param]
        keys = {"sgd": [], "adagrad": ["sum"], "sparse_adam": ["exp_avg", "exp_avg_sq"]}[name]
        return [s[k].numpy() for k in keys]


def max_difference(a, b, chunk=1 << 16):
    """Largest |a - b| relative to the largest |b|, a chunk of rows at a time
    (whole-table temporaries would take gigabytes)."""
    diff = scale = 0.0
    for i in range(0, len(b), chunk):
        x, y = a[i:i + chunk], b[i:i + chunk]
        diff = max(diff, float(np.abs(x - y).max()))
        scale = max(scale, float(np.abs(y).max()))
    return diff / max(scale, float(np.finfo(np.float32).tiny))


def agree(what, ours, theirs):
    worst = 0.0
    for a, b in zip(ours, theirs):
        worst = max(worst, max_difference(a.reshape(b.shape), b))
    if not worst <= TOLERANCE:
        raise RuntimeError(f"{what} differ by {worst:.3g} of the largest value (tolerance {TOLERANCE})")
    return worst


class Timer:
    """Runs named calls in a rotating order, each after a cache flush, and
    keeps their times per repetition."""

    def __init__(self, copy, flush):
        self.copy, self.flush = copy, flush
        self.samples = []

    def repetition(self, rep, calls):
        sample = {"copy_rate": self.copy.rate()} if self.copy is not None else {}
        names = list(calls)
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            self.flush()
            t = time.perf_counter()
            extra = calls[name]()
            sample[name] = time.perf_counter() - t
            if extra is not None:  # parts timed inside the call
                sample.update({f"{name}.{i}": v for i, v in enumerate(extra)})
        self.samples.append(sample)

    def median(self, fn):
        return statistics.median(fn(s) for s in self.samples)

    def fastest(self, name):
        """The shortest time of one call: the least disturbed by the other
        processes on a shared machine."""
        return min(s[name] for s in self.samples)


def breakdown(bench, ceiling, indices, values, threads):
    """The breakdown's calls, for Timer.repetition."""
    def grouping():
        if bench.group_rows(indices, ROWS, threads) != ceiling.distinct:
            raise RuntimeError("the grouping found another number of distinct rows than the ceiling")

    return {"grouping": grouping, "gradients": lambda: ceiling(None, [], values)}


def breakdown_figures(timer):
    """Medians of the breakdown's parts, and the fastest times of each
    call, in ms."""
    m = timer.median
    return {"fastest_ms": {k: timer.fastest(k) * 1e3 for k in timer.samples[0] if k != "copy_rate"},
            "grouping_ms": m(lambda x: x["grouping"]) * 1e3,
            "gradients_ms": m(lambda x: x["gradients"]) * 1e3,
            # what the step spends beyond the grouping and the ceiling
            "rest_ms": m(lambda x: x["fused"] - x["grouping"] - x["ceiling"]) * 1e3,
            "nonorm_rest_ms": m(lambda x: x["unfused.0"] - x["grouping"] - x["ceiling"]) * 1e3}


def optimizer_case(sn, ours, bench, copy, flush, name, cols, indices, values, reps, threads, seed):
    init = bench.uniform((ROWS, cols), seed)
    fused_table, unfused_table = init.copy(), init.copy()
    fused_state, unfused_state = our_state(name, cols), our_state(name, cols)
    theirs = TorchSide(name, init, indices, values)  # torch works on `init` itself
    ceiling = Ceiling(bench, indices, threads)
    stats = {}

    def fused(step):
        stats["fused"] = ours(name, fused_table, fused_state, indices, values, step, MAX_NORM)

    def unfused(step):
        t0 = time.perf_counter()
        stats["unfused"] = ours(name, unfused_table, unfused_state, indices, values, step, None)
        t1 = time.perf_counter()
        stats["renorm"] = sn.normalize_rows_(unfused_table, indices, MAX_NORM, eps=NORM_EPS)
        return t1 - t0, time.perf_counter() - t1

    timer = Timer(copy, flush)
    # Step 1, untimed: maps SparseAdam's state, allocates the ceiling's scratch.
    fused(1)
    unfused(1)
    theirs()
    ceiling(unfused_table, unfused_state, values)
    for rep in range(reps):
        step = rep + 2
        timer.repetition(rep, {"fused": lambda: fused(step), "unfused": lambda: unfused(step),
                               "torch": theirs,
                               "ceiling": lambda: ceiling(unfused_table, unfused_state, values),
                               **breakdown(bench, ceiling, indices, values, threads)})
    s = stats["fused"]
    if s.distinct_rows != ceiling.distinct or s.nonfinite_rows != 0 or stats["unfused"] != stats["fused"]._replace(rows_scaled=0):
        raise RuntimeError(f"unexpected statistics: fused {s}, unfused {stats['unfused']}, "
                           f"{ceiling.distinct} distinct rows")
    diffs = {"unfused": agree("the fused and unfused results", [fused_table] + fused_state,
                              [unfused_table] + unfused_state)}
    if name != "rowwise_adagrad":
        diffs["torch"] = agree("our fused results and torch's", [fused_table] + fused_state,
                               [init] + theirs.state(name))
    moved = bytes_moved(name, cols, ceiling.distinct)
    m = timer.median
    return {
        "name": name, "cols": cols, "distinct": ceiling.distinct, "long_groups": ceiling.long_groups,
        "scaled": s.rows_scaled, "moved": moved, "diffs": diffs,
        "fused_ms": m(lambda x: x["fused"]) * 1e3,
        "unfused_ms": m(lambda x: x["unfused"]) * 1e3,
        "unfused_step_ms": m(lambda x: x["unfused.0"]) * 1e3,
        "unfused_renorm_ms": m(lambda x: x["unfused.1"]) * 1e3,
        "torch_ms": m(lambda x: x["torch"]) * 1e3,
        "torch_step_ms": m(lambda x: x["torch.0"]) * 1e3,
        "torch_renorm_ms": m(lambda x: x["torch.1"]) * 1e3,
        "ceiling_ms": m(lambda x: x["ceiling"]) * 1e3,
        "copy_gbs": m(lambda x: x["copy_rate"]) / 1e9,
        "speedup": m(lambda x: x["torch"] / x["fused"]),
        "fused_over_unfused": m(lambda x: x["unfused"] / x["fused"]),
        "of_ceiling": m(lambda x: x["ceiling"] / x["fused"]),
        "of_copy": m(lambda x: moved / x["fused"] / x["copy_rate"]),
        "ceiling_of_copy": m(lambda x: moved / x["ceiling"] / x["copy_rate"]),
        **breakdown_figures(timer),
    }


def fusion_case(sn, ours, bench, copy, flush, cols, indices, reps, threads):
    """Adagrad at width `cols`: fused, unfused and ceiling on one table."""
    name = "adagrad"
    values = bench.uniform((COUNT, cols), 3)
    table = bench.uniform((ROWS, cols), 4)
    state = our_state(name, cols)
    ceiling = Ceiling(bench, indices, threads)

    def fused(step):
        ours(name, table, state, indices, values, step, MAX_NORM)  # its RowStats are no parts

    def unfused(step):
        t0 = time.perf_counter()
        ours(name, table, state, indices, values, step, None)
        t1 = time.perf_counter()
        sn.normalize_rows_(table, indices, MAX_NORM, eps=NORM_EPS)
        return t1 - t0, time.perf_counter() - t1

    timer = Timer(copy, flush)
    ours(name, table, state, indices, values, 1, MAX_NORM)
    ceiling(table, state, values)
    for rep in range(reps):
        step = 2 * rep + 2
        timer.repetition(rep, {"fused": lambda: fused(step),
                               "unfused": lambda: unfused(step + 1),
                               "ceiling": lambda: ceiling(table, state, values),
                               **breakdown(bench, ceiling, indices, values, threads)})
    moved = bytes_moved(name, cols, ceiling.distinct)
    m = timer.median
    return {
        "cols": cols, "moved": moved,
        "fused_ms": m(lambda x: x["fused"]) * 1e3,
        "unfused_ms": m(lambda x: x["unfused"]) * 1e3,
        "unfused_step_ms": m(lambda x: x["unfused.0"]) * 1e3,
        "unfused_renorm_ms": m(lambda x: x["unfused.1"]) * 1e3,
        "ceiling_ms": m(lambda x: x["ceiling"]) * 1e3,
        "copy_gbs": m(lambda x: x["copy_rate"]) / 1e9,
        "fused_over_unfused": m(lambda x: x["unfused"] / x["fused"]),
        "of_ceiling": m(lambda x: x["ceiling"] / x["fused"]),
        "of_copy": m(lambda x: moved / x["fused"] / x["copy_rate"]),
        **breakdown_figures(timer),
    }


def thread_probe(sn, ours, bench, flush, indices, values, reps, threads):
    """The fused SGD and Adagrad steps, the ceiling and the grouping at
    D = 128 on one thread and on `threads`, interleaved: how much of a
    call's time goes to waiting for a preempted thread at the end of its
    parallel regions (compare the runs under OMP_WAIT_POLICY=passive)."""
    table = bench.uniform((ROWS, 128), 2)
    total = our_state("adagrad", 128)
    ceiling = {t: Ceiling(bench, indices, t) for t in (1, threads)}
    calls = {}
    def quiet(f):  # Timer takes what a call returns for times of its parts
        return lambda: [f(), None][1]

    for t in (1, threads):
        calls[f"sgd/{t}"] = quiet(lambda t=t: ours("sgd", table, [], indices, values, 1, MAX_NORM, t))
        calls[f"adagrad/{t}"] = quiet(lambda t=t: ours("adagrad", table, total, indices, values, 1, MAX_NORM, t))
        calls[f"ceiling/{t}"] = quiet(lambda t=t: ceiling[t](table, [], values))
        calls[f"grouping/{t}"] = quiet(lambda t=t: bench.group_rows(indices, ROWS, t))
    for call in calls.values():
        call()
    timer = Timer(None, flush)
    for rep in range(reps):
        timer.repetition(rep, calls)
    print(f"thread probe, D = 128, {reps} repetitions, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}, "
          f"load average {os.getloadavg()[0]:.2f}; ms, median (fastest):")
    for name in calls:
        print(f"  {name:12s} {timer.median(lambda x: x[name]) * 1e3:8.2f} ({timer.fastest(name) * 1e3:.2f})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", required=True, help="directory holding the sparsenorm package (<build>/python)")
    ap.add_argument("--bench-lib", required=True, help="path to libsparsenorm_step_bench.so")
    ap.add_argument("--reps", type=int, default=9, help="repetitions per optimizer at D = 128")
    ap.add_argument("--fusion-reps", type=int, default=7, help="repetitions at D = 512")
    ap.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma-separated subset")
    ap.add_argument("--no-fusion-case", action="store_true", help="skip the D = 512 case")
    ap.add_argument("--thread-probe", type=int, metavar="REPS",
                    help="instead: one thread against all, interleaved, REPS repetitions (see thread_probe)")
    args = ap.parse_args()
    sys.path.insert(0, args.module)
    import sparsenorm

    threads = sparsenorm.default_thread_count()
    torch.set_num_threads(threads)
    bench = StepBench(args.bench_lib)
    ours = OurStep(sparsenorm)
    copy, flush = Copy(threads), Flush()
    indices = bench.zipf_batch(COUNT, ROWS, ZIPF_EXPONENT, BATCH_SEED)

    values = bench.uniform((COUNT, 128), 1)
    if args.thread_probe:
        thread_probe(sparsenorm, ours, bench, flush, indices, values, args.thread_probe, threads)
        return 0
    print(f"sparsenorm {sparsenorm.__version__} ({sparsenorm.simd_target()}) through {ours.how}, "
          f"torch {torch.__version__}, {threads} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"float32 {ROWS}x128, {COUNT} Zipf({ZIPF_EXPONENT}) indices, max-norm {MAX_NORM}; medians of "
          f"{args.reps} repetitions; {DEFINITION}")
    print(f"{'optimizer':16s} {'fused':>7s} {'unfused':>15s} {'torch':>17s} {'ceiling':>8s} {'speedup':>8s} "
          f"{'unf/fus':>8s} {'of ceil':>8s} {'of copy':>8s} {'ceil/copy':>9s}")
    print(f"{'':16s} {'ms':>7s} {'step+renorm ms':>15s} {'step+renorm ms':>17s} {'ms':>8s}")
    results = []
    for name in args.optimizers.split(","):
        r = optimizer_case(sparsenorm, ours, bench, copy, flush, name, 128, indices, values, args.reps,
                           threads, 2)
        results.append(r)
        print(f"{name:16s} {r['fused_ms']:7.2f} {r['unfused_step_ms']:7.2f}+{r['unfused_renorm_ms']:<7.2f} "
              f"{r['torch_step_ms']:8.1f}+{r['torch_renorm_ms']:<8.1f} {r['ceiling_ms']:8.2f} "
              f"{r['speedup']:8.1f} {r['fused_over_unfused']:8.2f} {r['of_ceiling']:8.2f} "
              f"{r['of_copy']:8.2f} {r['ceiling_of_copy']:9.2f}", flush=True)
    r0 = results[0]
    print(f"{r0['distinct']} distinct rows ({r0['long_groups']} named more than 64 times); "
          f"copy {statistics.median(r['copy_gbs'] for r in results):.1f} GB/s; bytes per step: " +
          ", ".join(f"{r['name']} {r['moved'] / 1e6:.1f} MB" for r in results) + "; rows scaled: " +
          ", ".join(f"{r['name']} {r['scaled']}" for r in results))
    print("breakdown, medians in ms: grouping (src/cpu/group_rows.h) alone; the ceiling's gradient sums "
          "alone; the step beyond grouping + ceiling, fused and without the norm")
    for r in results:
        print(f"  {r['name']:16s} grouping {r['grouping_ms']:6.2f}  gradient sums {r['gradients_ms']:6.2f}  "
              f"ceiling {r['ceiling_ms']:6.2f}  rest fused {r['rest_ms']:6.2f}  "
              f"rest without norm {r['nonorm_rest_ms']:6.2f}")
    print("fastest repetition of each call, ms (the least disturbed by other processes):")
    for r in results:
        print(f"  {r['name']:16s} " + "  ".join(f"{k} {v:.2f}" for k, v in r["fastest_ms"].items()))
    print("largest differences, relative to the largest value: " +
          "; ".join(f"{r['name']} " + ", ".join(f"{k} {v:.1e}" for k, v in r["diffs"].items())
                    for r in results))
    fusion = None
    if not args.no_fusion_case:
        del values
        fusion = fusion_case(sparsenorm, ours, bench, copy, flush, 512, indices, args.fusion_reps, threads)
        f = fusion
        print(f"adagrad D=512, medians of {args.fusion_reps}: fused {f['fused_ms']:.2f} ms, unfused "
              f"{f['unfused_step_ms']:.2f}+{f['unfused_renorm_ms']:.2f} ms, ceiling {f['ceiling_ms']:.2f} ms; "
              f"unfused/fused {f['fused_over_unfused']:.2f}, of ceiling {f['of_ceiling']:.2f}, "
              f"of copy {f['of_copy']:.2f} ({f['moved'] / 1e6:.0f} MB, copy {f['copy_gbs']:.1f} GB/s); "
              f"grouping {f['grouping_ms']:.2f} ms, gradient sums {f['gradients_ms']:.2f} ms, rest fused "
              f"{f['rest_ms']:.2f} ms, rest without norm {f['nonorm_rest_ms']:.2f} ms; fastest: " +
              "  ".join(f"{k} {v:.2f}" for k, v in f["fastest_ms"].items()))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    for r in results:
        print(f"optim-cpu-{r['name']}: "
              f"speedup_vs_torch={r['speedup']:.1f} fused_over_unfused={r['fused_over_unfused']:.2f} "
              f"fraction_of_ceiling={r['of_ceiling']:.2f}")
    if fusion:
        print(f"optim-cpu-fusion-d512: fused_over_unfused={fusion['fused_over_unfused']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
