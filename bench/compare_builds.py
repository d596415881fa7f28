#!/usr/bin/python3
"""Two builds of sparsenorm compared case by case in one run, with an A/A control.

    /usr/bin/python3 bench/compare_builds.py --before BUILD_A --after BUILD_B

BUILD_A and BUILD_B are CMake build directories of the project configured as
`bench/run cpu` configures build-bench/ (-DCMAKE_BUILD_TYPE=Release
-DSPARSENORM_BUILD_BENCHMARKS=ON -DSPARSENORM_PYTHON=ON -DSPARSENORM_CUDA=OFF
-DSPARSENORM_BUILD_TESTS=OFF -DSPARSENORM_BUILD_EXAMPLES=OFF). Every case
runs for three variants: `before` (BUILD_A), `before-again` (BUILD_A a second
time, loaded or started separately: the A/A control) and `after` (BUILD_B).

The cases are those of `bench/run cpu`, with their definitions and data
generators imported from the scripts that define them:

  gb/...      every Google Benchmark case of <build>/bench/sparsenorm_bench
              (the cases of both builds' --benchmark_list_tests; a case that
              only one build has is listed after the table and not measured).
              One process per variant, case and repetition, with
              --benchmark_filter=^<case>$ --benchmark_format=json and
              --benchmark_min_time (--gb-min-time); the time is Google
              Benchmark's real time per iteration. `before` and
              `before-again` are two processes of the before binary.
  rows/...    the cases of compare_rows.py: sparsenorm_normalize_rows through
              ctypes (compare_rows.py's "ours" column; torch is not called).
  matrix/...  the cases of compare_matrix.py, the canonical matrix and the
              --unsorted one, axes 0 and 1: sparsenorm_normalize_sparse
              through ctypes (compare_matrix.py's "ours" column).
  python/...  the large case of compare_python.py, NumPy array and PyTorch
              tensor (the time of the public Python call
              sparsenorm.normalize_rows_), and its small case: the median
              time of one Python call on a 1,000 x 16 table with one index,
              NumPy and PyTorch.

How the variants are interleaved. Cases run one after the other; within a
case, every repetition runs the three variants once each, in an order drawn
at random for that repetition (--seed), so that each ratio compares
measurements taken moments apart.

  ctypes cases (rows, matrix): the three C libraries are loaded into this
  process, each from its own copy of <build>/libsparsenorm_c.so in a
  temporary directory (dlopen of one path twice would return the same
  handle, and `before-again` would be `before`). Each variant's call is
  preceded by the 64 MiB cache flush of bench/membw.py and timed with
  perf_counter, as the scripts time theirs. There are three copies of each
  case's data, identical at the start; in repetition r variant v works on
  copy (v + r) mod 3, so every copy gets one call per repetition (the same
  call, as in the scripts: same indices, max_norm lowered 0.8x per
  repetition) and no variant keeps the same memory. The copies must agree
  at the end (the scripts' tolerances); a disagreement is reported after
  the table.
  Python cases: one worker process per variant (this script with --worker),
  each importing sparsenorm from its build's python/ directory; the
  workers build their data side by side, then the driver asks one worker
  at a time for one repetition (compare_python.py's LargeCase.repetition,
  or small_case with --calls calls), in the random order. Idle workers wait
  on a pipe and use no CPU.
  Google Benchmark cases: a build's benchmarks cannot share a process with
  another build's, so every measurement is its own process; each spends
  most of its time building the case's data (Google Benchmark calls the
  case function, data set-up included, once per trial run), which is what
  makes these cases the long part of the run.

What is reported, per case, over the repetitions r:
  before          median of the before times (for orientation)
  after/before    median over r of after[r] / before[r]
  A/A             median over r of before-again[r] / before[r]
  noise           max(|1 - median A/A|, (Q3 - Q1) / 2 of the A/A ratios),
                  quartiles by statistics.quantiles(method="inclusive"):
                  how far from 1 a ratio of the same build to itself lands
                  in this run, as a systematic offset or as the half-spread
                  of the middle half of the repetitions
  verdict         SLOWER when median(after/before) > 1.05 * max(1, median(A/A)),
                  ok otherwise

The Markdown table can be pasted into docs/PERFORMANCE.md. The last line is
    builds: cases=<n> slower=<k> worst=<case>:<ratio>
where worst is the case with the largest median after/before.

Run time on the 2-core development VM: the defaults (21 repetitions of the
in-process cases, 3 of the Google Benchmark cases) take 15 to 20 minutes,
four fifths of it in the Google Benchmark cases (three processes per case
and repetition, each building its data single-threaded, usually twice: the
row tables of up to 2 GB take 3 to 12 s each time). --quick takes about 2
minutes: 9 repetitions; of Google Benchmark, BM_Rows/float32/D:128 and
BM_MatrixCsr/sorted (both axes) only; the headline row case only (as
compare_rows.py --quick); the canonical matrix only (no --unsorted); the
NumPy large case and fewer calls in the small one (as compare_python.py
--quick). --parts limits the run to some of the four groups, --cases to the
cases whose name matches a regular expression (to measure again, with more
repetitions, those that came out SLOWER).

Three repetitions are few: a Google Benchmark measurement is a process of
its own, seconds from the next, and on this VM the machine's state changes
on that scale, so with three repetitions a build measured against itself
can come out 5 to 10 % apart on some case even when the machine is quiet.
Measure such a case again with --cases and more --gb-reps before believing
a SLOWER.
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

VARIANTS = ("before", "before-again", "after")
THRESHOLD = 1.05
PARTS = ("gb", "rows", "matrix", "python")
REFILL_ROWS = 30
QUICK_GB = re.compile(r"^BM_Rows/float32/D:128/|^BM_MatrixCsr/sorted/")


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Results


class Case:
    def __init__(self, name, unit):
        self.name = name
        self.unit = unit  # "ms" or "us": how the before time is shown
        self.times = {v: [] for v in VARIANTS}  # seconds, one per repetition

    def add(self, variant, seconds):
        self.times[variant].append(seconds)

    def ratios(self, variant):
        return [x / b for x, b in zip(self.times[variant], self.times["before"])]

    def summary(self):
        ab, aa = self.ratios("after"), self.ratios("before-again")
        med_ab, med_aa = statistics.median(ab), statistics.median(aa)
        spread = 0.0
        if len(aa) >= 2:
            q1, _, q3 = statistics.quantiles(aa, n=4, method="inclusive")
            spread = (q3 - q1) / 2
        noise = max(abs(1 - med_aa), spread)
        slower = med_ab > THRESHOLD * max(1.0, med_aa)
        return {"before_s": statistics.median(self.times["before"]), "after_over_before": med_ab,
                "aa": med_aa, "noise": noise, "verdict": "SLOWER" if slower else "ok"}


def format_time(seconds, unit):
    value = seconds * (1e3 if unit == "ms" else 1e6)
    digits = 3 if value < 10 else 2 if value < 100 else 1
    return f"{value:.{digits}f} {unit}"


# ---------------------------------------------------------------------------
# Builds


class Build:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.lib = os.path.join(self.path, "libsparsenorm_c.so")
        self.bench = os.path.join(self.path, "bench", "sparsenorm_bench")
        self.module = os.path.join(self.path, "python")

    def check(self, parts):
        need = []
        if "gb" in parts:
            need.append(self.bench)
        if "rows" in parts or "matrix" in parts:
            need.append(self.lib)
        if "python" in parts:
            need.append(os.path.join(self.module, "sparsenorm", "__init__.py"))
        missing = [p for p in need if not os.path.exists(p)]
        if missing:
            raise SystemExit(f"compare_builds.py: {self.path} is not a build of bench/run cpu's "
                             f"configuration: missing {', '.join(missing)}")

    def describe(self):
        cache = {}
        try:
            with open(os.path.join(self.path, "CMakeCache.txt")) as f:
                for line in f:
                    m = re.match(r"(CMAKE_BUILD_TYPE|CMAKE_HOME_DIRECTORY):[A-Z]+=(.*)", line.strip())
                    if m:
                        cache[m.group(1)] = m.group(2)
        except OSError:
            pass
        source = cache.get("CMAKE_HOME_DIRECTORY", "?")
        head = "?"
        if source != "?":
            r = subprocess.run(["git", "-C", source, "describe", "--always", "--dirty"],
                               capture_output=True, text=True)
            head = r.stdout.strip() or "?"
        build_type = cache.get("CMAKE_BUILD_TYPE", "?")
        if build_type != "Release":
            log(f"warning: {self.path} has CMAKE_BUILD_TYPE={build_type}, not Release")
        return f"{self.path} ({build_type}; source {source}, git {head} now)"


def wanted(args, name):
    return args.cases is None or re.search(args.cases, name) is not None


def shuffled(order_rng):
    v = list(VARIANTS)
    order_rng.shuffle(v)
    return v


# ---------------------------------------------------------------------------
# Google Benchmark cases: one process per variant, case and repetition.


def gb_list(binary):
    r = subprocess.run([binary, "--benchmark_list_tests"], capture_output=True, text=True, check=True)
    return [line.strip() for line in r.stdout.splitlines() if line.strip()]


def gb_once(binary, name, min_time):
    pattern = "^" + re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", name) + "$"
    r = subprocess.run([binary, f"--benchmark_filter={pattern}", f"--benchmark_min_time={min_time}",
                        "--benchmark_format=json"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{binary} {name}: exit {r.returncode}: {r.stderr.strip()[-2000:]}")
    runs = [b for b in json.loads(r.stdout)["benchmarks"] if b.get("run_type", "iteration") == "iteration"]
    if len(runs) != 1 or runs[0]["name"] != name:
        raise RuntimeError(f"{binary}: the filter for {name} ran {[b['name'] for b in runs]}")
    b = runs[0]
    if b.get("error_occurred"):
        raise RuntimeError(f"{binary} {name}: {b.get('error_message')}")
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
    return b["real_time"] * scale


def gb_case_name(name):
    return "gb/" + re.sub(r"/real_time$", "", name)


def run_gb(args, builds, order_rng, cases, notes):
    before, after = gb_list(builds["before"].bench), gb_list(builds["after"].bench)
    names = [n for n in before if n in after]
    for n in before:
        if n not in after:
            notes.append(f"gb/{n}: only in the before build, not measured")
    for n in after:
        if n not in before:
            notes.append(f"gb/{n}: only in the after build, not measured")
    if args.quick:
        names = [n for n in names if QUICK_GB.search(n)]
    names = [n for n in names if wanted(args, gb_case_name(n))]
    for k, name in enumerate(names):
        case = Case(gb_case_name(name), "ms")
        t = time.perf_counter()
        for _ in range(args.gb_reps):
            for v in shuffled(order_rng):
                case.add(v, gb_once(builds[v].bench, name, args.gb_min_time))
        cases.append(case)
        progress(case, f"gb {k + 1}/{len(names)}", time.perf_counter() - t)


def progress(case, where, seconds):
    s = case.summary()
    log(f"[{where}] {case.name}: after/before {s['after_over_before']:.3f}, A/A {s['aa']:.3f}, "
        f"before {format_time(s['before_s'], case.unit)} ({seconds:.0f} s, load {os.getloadavg()[0]:.1f})")


# ---------------------------------------------------------------------------
# ctypes cases: the three libraries in this process, from distinct copies.


def load_libraries(builds, tmp):
    from sparsenorm_ctypes import Library

    libs = {}
    for v in VARIANTS:
        path = os.path.join(tmp, f"libsparsenorm_c-{v}.so")
        shutil.copyfile(builds[v].lib, path)
        libs[v] = Library(path)
    handles = {v: libs[v].lib._handle for v in VARIANTS}
    if len(set(handles.values())) != len(VARIANTS):
        raise RuntimeError(f"the copies were not loaded separately: {handles}")
    return libs


def warm_up(libs):
    """One small call of each kind per library: first-call costs (OpenMP's
    threads, lazy initialization) are not timed in the first repetition."""
    import numpy as np
    import scipy.sparse as sp
    import torch

    for sn in libs.values():
        table = torch.ones((1000, 16))
        sn.embedding_renorm_(table, torch.arange(100), 1.0)
        m = sp.random(1000, 100, density=0.05, format="csr", dtype=np.float32, random_state=0)
        for axis in (0, 1):
            sn.normalize_sparse_(m, axis=axis, norm="l2")


def rows_case_name(cr, case):
    return "rows/" + re.sub(r",?\s+", "-", cr.case_name(*case))


def run_rows(args, libs, order_rng, cases, notes):
    import numpy as np

    import compare_rows as cr
    from membw import Flush

    flush = Flush()
    rng = np.random.default_rng(0)
    todo = [c for c in cr.case_list(args.quick) if wanted(args, rows_case_name(cr, c))]
    for k, (dtype, rows, cols, count, hot) in enumerate(todo):
        t = time.perf_counter()
        name = rows_case_name(cr, (dtype, rows, cols, count, hot))
        case = Case(name, "ms")
        tables = [None, None, None]
        for rep in range(args.reps):
            if rep % REFILL_ROWS == 0:
                # Fresh tables every REFILL_ROWS repetitions: max_norm falls
                # 0.8x per repetition, and float16 rows would reach the
                # subnormal range after some 35 (compare_rows.py runs 15).
                tables[0] = None
                tables[0] = cr.random_table(dtype, rows, cols, rng)
                for j in (1, 2):
                    tables[j] = None
                    tables[j] = cr.numpy_empty((rows, cols), dtype)
                    tables[j].copy_(tables[0])
                max_norm = cr.first_max_norm(cols)
            idx = cr.draw_indices(rng, rows, count, hot)
            for v in shuffled(order_rng):
                table = tables[(VARIANTS.index(v) + rep) % 3]
                flush()
                t0 = time.perf_counter()
                stats = libs[v].embedding_renorm_(table, idx, max_norm)
                case.add(v, time.perf_counter() - t0)
                if stats.rows_scaled != stats.distinct_rows:
                    raise RuntimeError(f"{name} ({v}): only {stats.rows_scaled} of "
                                       f"{stats.distinct_rows} rows were scaled")
            max_norm *= cr.MAX_NORM_STEP
        # The three copies got the same calls: they must agree (compared a
        # slice of rows at a time, in float64).
        diff = scale = 0.0
        for r in range(0, rows, 1 << 16):
            ref = tables[0][r:r + (1 << 16)].double()
            scale = max(scale, ref.abs().max().item())
            for j in (1, 2):
                diff = max(diff, (tables[j][r:r + (1 << 16)].double() - ref).abs().max().item())
        if not diff <= cr.TOLERANCES[dtype] * scale:
            notes.append(f"{name}: the three copies of the table differ by {diff:.3g} "
                         f"(scale {scale:.3g}): the builds disagree")
        del tables, table
        cases.append(case)
        progress(case, f"rows {k + 1}/{len(todo)}", time.perf_counter() - t)


def run_matrix(args, libs, order_rng, cases, notes):
    import numpy as np

    import compare_matrix as cm
    from membw import Flush

    flush = Flush()
    for unsorted in ((False,) if args.quick else (False, True)):
        names = {axis: f"matrix/csr{'-unsorted' if unsorted else ''}-axis{axis}" for axis in cm.AXES}
        axes = [axis for axis in cm.AXES if wanted(args, names[axis])]
        if not axes:
            continue
        t = time.perf_counter()
        x = cm.benchmark_matrix(cm.ROWS, cm.COLS, cm.NNZ, unsorted=unsorted)
        log(f"matrix {'unsorted' if unsorted else 'sorted'}: built in {time.perf_counter() - t:.1f} s")
        for axis in axes:
            t = time.perf_counter()
            name = names[axis]
            case = Case(name, "ms")
            mats = [x.copy() for _ in range(3)]
            options = {v: libs[v].matrix_options(axis=axis, norm="l2") for v in VARIANTS}
            for rep in range(args.reps):
                for v in shuffled(order_rng):
                    m = mats[(VARIANTS.index(v) + rep) % 3]
                    flush()
                    t0 = time.perf_counter()
                    stats = libs[v].normalize_sparse_(m, options=options[v])
                    case.add(v, time.perf_counter() - t0)
                    if stats.vectors_scaled == 0:
                        raise RuntimeError(f"{name} ({v}): nothing was scaled")
            for j in (1, 2):
                if not (np.array_equal(mats[j].indices, mats[0].indices) and
                        np.allclose(mats[j].data, mats[0].data, rtol=1e-5, atol=0)):
                    notes.append(f"{name}: the three copies of the matrix differ: the builds disagree")
            del mats
            cases.append(case)
            progress(case, "matrix", time.perf_counter() - t)
        del x


# ---------------------------------------------------------------------------
# Python module cases: one worker process per variant.


class Worker:
    def __init__(self, build):
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", build.module],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def send(self, **msg):
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def receive(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"a Python worker ended (exit {self.proc.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"Python worker: {reply['error']}")
        return reply

    def ask(self, **msg):
        self.send(**msg)
        return self.receive()

    def close(self):
        try:
            self.send(cmd="quit")
            self.proc.stdin.close()
        except OSError:
            pass
        self.proc.wait(timeout=60)


def worker_main(module_dir):
    """The worker's loop: one JSON request a line on stdin, one JSON reply a
    line on the original stdout (fd 1 is pointed at stderr, so that nothing
    a library prints can mix into the replies)."""
    replies = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.path.insert(0, os.path.abspath(module_dir))
    import numpy as np

    import compare_python as cp
    import sparsenorm

    where = os.path.dirname(os.path.dirname(os.path.abspath(sparsenorm.__file__)))
    if where != os.path.abspath(module_dir):
        raise SystemExit(f"worker: imported sparsenorm from {where}, not {module_dir}")
    large = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            cmd = msg["cmd"]
            if cmd == "quit":
                break
            if cmd == "hello":
                reply = {"version": sparsenorm.__version__, "simd": sparsenorm.simd_target()}
            elif cmd == "large":
                large = None
                large = cp.LargeCase(np.random.default_rng(0), msg["torch"])
                reply = {}
            elif cmd == "large_rep":
                py, cxx = large.repetition(sparsenorm, msg["rep"])
                reply = {"py": py, "cxx": cxx}
            elif cmd == "large_end":
                large.check()
                large = None
                reply = {}
            elif cmd == "small":
                reply = {"us": cp.small_case(sparsenorm, msg["calls"])}
            else:
                reply = {"error": f"unknown command {cmd}"}
        except Exception as e:  # reported to the driver, which stops
            reply = {"error": f"{type(e).__name__}: {e}"}
        replies.write(json.dumps(reply) + "\n")
    return 0


def run_python(args, builds, order_rng, cases, notes):
    if not any(wanted(args, f"python/{k}") for k in ("numpy-1000000x128-100000idx", "torch-1000000x128-100000idx",
                                                     "call-numpy-1000x16", "call-torch-1000x16")):
        return
    workers = {v: Worker(builds[v]) for v in VARIANTS}
    try:
        hello = {v: workers[v].ask(cmd="hello") for v in VARIANTS}
        log("python workers: " + ", ".join(f"{v} {h['version']} ({h['simd']})" for v, h in hello.items()))
        for as_torch in ((False,) if args.quick else (False, True)):
            t = time.perf_counter()
            name = f"python/{'torch' if as_torch else 'numpy'}-1000000x128-100000idx"
            if not wanted(args, name):
                continue
            case = Case(name, "ms")
            for w in workers.values():  # the three build their tables side by side
                w.send(cmd="large", torch=as_torch)
            for w in workers.values():
                w.receive()
            for rep in range(args.reps):
                for v in shuffled(order_rng):
                    case.add(v, workers[v].ask(cmd="large_rep", rep=rep)["py"])
            for w in workers.values():
                w.ask(cmd="large_end")
            cases.append(case)
            progress(case, "python", time.perf_counter() - t)
        t = time.perf_counter()
        calls = args.calls // 3 if args.quick else args.calls
        small = {}
        sides = [side for side in ("numpy", "torch") if wanted(args, f"python/call-{side}-1000x16")]
        for _ in range(args.reps if sides else 0):
            for v in shuffled(order_rng):
                for side, us in workers[v].ask(cmd="small", calls=calls)["us"].items():
                    if side in sides:
                        small.setdefault(side, Case(f"python/call-{side}-1000x16", "us"))
                        small[side].add(v, us * 1e-6)
        for case in small.values():
            cases.append(case)
            progress(case, "python", time.perf_counter() - t)
    finally:
        for w in workers.values():
            w.close()


# ---------------------------------------------------------------------------


def report(args, builds, cases, notes, header, seconds):
    rule = (f"SLOWER when median(after/before) > {THRESHOLD} * max(1, median(A/A)), "
            "ok otherwise; A/A = before-again/before")
    print()
    print(f"A/B of two builds, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {socket.gethostname()}, "
          f"{os.cpu_count()} cores, {os.getloadavg()[0]:.2f} load at the end")
    for line in header:
        print(line)
    print(f"repetitions: {args.reps} (ctypes and Python cases), {args.gb_reps} (Google Benchmark, "
          f"--benchmark_min_time={args.gb_min_time}); variants in random order within each repetition "
          f"(seed {args.seed}); run time {seconds / 60:.1f} min")
    print(f"rule: {rule}")
    print("noise = max(|1 - median A/A|, (Q3 - Q1)/2 of the per-repetition A/A ratios)")
    print()
    print("| case | before | after/before | A/A | noise | verdict |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    worst = None
    slower = 0
    for case in cases:
        s = case.summary()
        print(f"| {case.name} | {format_time(s['before_s'], case.unit)} | {s['after_over_before']:.3f} | "
              f"{s['aa']:.3f} | {100 * s['noise']:.1f}% | {s['verdict']} |")
        slower += s["verdict"] == "SLOWER"
        if worst is None or s["after_over_before"] > worst[1]:
            worst = (case.name, s["after_over_before"])
    noisy = [c.name for c in cases if c.summary()["noise"] > THRESHOLD - 1]
    print()
    print(f"noise above {100 * (THRESHOLD - 1):.0f}% (read their verdicts with care): {len(noisy)} of {len(cases)} cases")
    for n in notes:
        print(f"note: {n}")
    print(f"builds: cases={len(cases)} slower={slower} "
          f"worst={worst[0] + ':' + format(worst[1], '.3f') if worst else 'none'}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="build directory of the code before the change")
    ap.add_argument("--after", required=True, help="build directory of the code after the change")
    ap.add_argument("--reps", type=int, help="repetitions of the ctypes and Python cases (default 21, "
                    "--quick 9)")
    ap.add_argument("--gb-reps", type=int, help="repetitions of the Google Benchmark cases "
                    "(default 3, or --reps if smaller)")
    ap.add_argument("--gb-min-time", type=float, default=0.1,
                    help="--benchmark_min_time of each Google Benchmark process (default 0.1 s)")
    ap.add_argument("--calls", type=int, default=1000,
                    help="calls per repetition in the small Python case (default 1000, --quick a third)")
    ap.add_argument("--quick", action="store_true", help="fewer cases and repetitions (see the top of the file)")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help=f"comma-separated groups of cases to run, of {','.join(PARTS)} (default all)")
    ap.add_argument("--cases", help="only the cases whose name (as in the table) matches this regular "
                    "expression, e.g. to measure again those that came out SLOWER")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random order of the variants")
    ap.add_argument("--raw", help="write every measured time (seconds) to this JSON file")
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 9 if args.quick else 21
    if args.gb_reps is None:
        args.gb_reps = min(3, args.reps)
    if args.reps < 1 or args.gb_reps < 1:
        ap.error("--reps and --gb-reps must be at least 1")
    parts = [p for p in args.parts.split(",") if p]
    if any(p not in PARTS for p in parts):
        ap.error(f"--parts: expected some of {','.join(PARTS)}")

    builds = {"before": Build(args.before), "after": Build(args.after)}
    builds["before-again"] = builds["before"]
    for b in (builds["before"], builds["after"]):
        b.check(parts)
    header = [f"before: {builds['before'].describe()}", f"after: {builds['after'].describe()}",
              f"load average at the start: {os.getloadavg()[0]:.2f}"]
    order_rng = random.Random(args.seed)
    cases, notes = [], []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="compare_builds-") as tmp:
        if "rows" in parts or "matrix" in parts:
            libs = load_libraries(builds, tmp)
            header.append("C libraries loaded: " + ", ".join(f"{v} {libs[v].version()}" for v in VARIANTS))
            warm_up(libs)
            if "rows" in parts:
                run_rows(args, libs, order_rng, cases, notes)
            if "matrix" in parts:
                run_matrix(args, libs, order_rng, cases, notes)
        if "python" in parts:
            run_python(args, builds, order_rng, cases, notes)
        if "gb" in parts:
            run_gb(args, builds, order_rng, cases, notes)
    # The table in bench/run's order: Google Benchmark, rows, matrix, Python.
    cases.sort(key=lambda c: PARTS.index(c.name.split("/")[0]))
    if args.raw:
        with open(args.raw, "w") as f:
            json.dump({"before": builds["before"].path, "after": builds["after"].path, "seed": args.seed,
                       "cases": {c.name: {"unit": c.unit, "seconds": c.times} for c in cases}}, f, indent=1)
    report(args, builds, cases, notes, header, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
