#!/usr/bin/env python3
"""GPU comparisons in one process, timed with CUDA events: sparsenorm's CUDA
backend (through its C interface and ctypes, on the caller's stream with
caller-provided scratch memory, exactly as a framework binding would call
it), the library a user would otherwise pick, and a device-to-device copy.

Rows: torch.embedding_renorm_ against ours on a table of 10,000,000 rows (or
5 GB, whichever is smaller) with 1,000,000 uniform random indices, for
float32, float16 and bfloat16 and D in {16, 32, 128, 512}. Bytes counted per
call: each distinct row read once, each scaled row written once, the index
list read once. Each repetition draws fresh indices and lowers max_norm below
every row norm left by the previous one, so every distinct row is read and
rescaled by both libraries on every call.

torch.embedding_renorm_ on CUDA fails on tables of more than 2^31 elements;
where a case's table is larger (float16/bfloat16 at D = 512), both libraries
draw their indices from the first (2^31 - 1) / D rows, and the line says so.

Matrix: CSR column (axis 0) and row (axis 1) normalization of a 2,000,000 x
100,000 float32 matrix with about 50,000,000 stored values (uniform random
coordinates, duplicates summed, indices sorted), against CuPy: the squared
values summed per column (cupyx.scipy.sparse sum) or per row, the square
root, and the stored values divided in place by their vector's norm. Bytes
counted: values read and written, the per-entry vector index read (axis 0),
or the index pointers read (axis 1).

Copy: a device-to-device copy of 1 GiB (torch copy_), bytes read + written.

Ours, theirs and the copy are timed in turn within every repetition; the
figures are medians over the repetitions. Each case checks its results
against torch or CuPy, and a sample against float64, and fails loudly on a
mismatch. Ends with one line per case:
    rows-gpu-float32-D128: speedup_vs_torch=<x> fraction_of_copy=<y>
    matrix-gpu-axis0: speedup_vs_cupy=<x> fraction_of_copy=<y>
"""

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sparsenorm_cuda_ctypes import CudaLibrary  # noqa: E402

DEVICE = "cuda"
TABLE_ROWS = 10_000_000
TABLE_BYTES = 5_000_000_000
NUM_INDICES = 1_000_000
TORCH_MAX_ELEMENTS = 2**31 - 1
COPY_BYTES = 1 << 30

# Agreement, in units in the last place of the storage type at each
# element's magnitude. Against float64 (one call, from the same input):
# one rounding per element plus float32 sums, as tests/python/test_c_api.py
# allows. Against torch after all the repetitions: both libraries round
# every call, torch also rounds its scale to the storage type, so the
# tables drift apart by a few ulps; a skipped or wrongly scaled row would
# be off by 20% (the max_norm step) and still shows.
ULPS_VS_FLOAT64 = {torch.float32: 8, torch.float16: 1, torch.bfloat16: 1}
ULPS_VS_TORCH = 16
MANTISSA_BITS = {torch.float32: 23, torch.float16: 10, torch.bfloat16: 7}
MIN_EXPONENT = {torch.float32: -126, torch.float16: -14, torch.bfloat16: -126}
DTYPE_NAME = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


class Timer:
    """CUDA events around work enqueued on the current stream."""

    def __new__(cls):
        return super().__new__(HostTimer if DEVICE == "cpu" else cls)

    def __init__(self):
        self.start = torch.cuda.Event(enable_timing=True)
        self.end = torch.cuda.Event(enable_timing=True)

    def __enter__(self):
        self.start.record()
        return self

    def __exit__(self, *exc):
        self.end.record()

    def seconds(self):
        return self.start.elapsed_time(self.end) / 1e3  # after a synchronize


class HostTimer(Timer):
    """--dry-run: wall time of synchronous host work."""

    def __init__(self):
        self.t0 = self.t1 = 0.0

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.t1 = time.perf_counter()

    def seconds(self):
        return self.t1 - self.t0


class Copy:
    def __init__(self):
        self.src = torch.ones(COPY_BYTES // 4, dtype=torch.float32, device=DEVICE)
        self.dst = torch.empty_like(self.src)
        self.timer = Timer()

    def run(self):
        with self.timer:
            self.dst.copy_(self.src)

    def rate(self):
        return 2 * COPY_BYTES / self.timer.seconds()


def stream_handle():
    return torch.cuda.current_stream().cuda_stream if DEVICE == "cuda" else None


def synchronize():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


class HostRows:
    """--dry-run: the CPU library behind CudaLibrary's row-operator calls, so
    that this script's own logic can be exercised on a machine without GPU."""

    def __init__(self, path):
        from sparsenorm_ctypes import Library
        self.cpu = Library(path)
        self.last = None

    def device_count(self):
        return 1

    def options(self, **kwargs):
        return self.cpu.options(**kwargs)

    def rows_scratch_bytes(self, rows, num_indices):
        return 16

    def normalize_rows_async(self, data, dtype, rows, cols, row_stride, indices, index_type, count, options,
                             scratch, scratch_bytes, stream):
        self.last = self.cpu.normalize_rows(data, dtype, rows, cols, row_stride, indices, index_type, count,
                                            options)

    def rows_result(self, scratch, stream):
        return self.last


# ---------------------------------------------------------------------------
# Rows.

def fill_normal(table, generator, chunk_rows=1 << 20):
    for start in range(0, table.shape[0], chunk_rows):
        part = table[start:start + chunk_rows]
        part.copy_(torch.randn(part.shape, generator=generator, device=DEVICE, dtype=torch.float32))


def max_ulps(a, b, dtype):
    """max |a - b| in ulps of `dtype` at the larger magnitude, chunk by chunk."""
    worst = 0.0
    chunk_rows = max(1, (1 << 24) // max(1, a.shape[1]))
    for start in range(0, a.shape[0], chunk_rows):
        x = a[start:start + chunk_rows].double()
        y = b[start:start + chunk_rows].double()
        m = torch.maximum(x.abs(), y.abs()).clamp_min(1e-300)
        exponent = torch.floor(torch.log2(m)).clamp_min(MIN_EXPONENT[dtype])
        worst = max(worst, ((x - y).abs() / torch.exp2(exponent - MANTISSA_BITS[dtype])).max().item())
    return worst


def float64_expected(before, max_norm):
    """torch.embedding_renorm_'s rule in float64 for distinct rows `before`."""
    x = before.double()
    n = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    factor = torch.where(n > max_norm, max_norm / (n + 1e-7), torch.ones_like(n))
    return x * factor


def run_rows_case(sn, copy, dtype, cols, reps, generator):
    element = torch.empty(0, dtype=dtype).element_size()
    rows = min(TABLE_ROWS, TABLE_BYTES // (cols * element))
    pick_rows = min(rows, TORCH_MAX_ELEMENTS // cols)
    ours = torch.empty(rows, cols, dtype=dtype, device=DEVICE)
    fill_normal(ours, generator)
    theirs = ours.clone()
    scratch_bytes = sn.rows_scratch_bytes(rows, NUM_INDICES)
    scratch = torch.empty(scratch_bytes, dtype=torch.uint8, device=DEVICE)
    options = sn.options(eps=1e-7)  # torch's rule: max-norm, strict comparison, eps 1e-7
    # Row norms are about sqrt(cols); with 10,000,000 rows of 16 values some
    # fall below a quarter of that, none below a twentieth.
    max_norm = 0.05 * cols ** 0.5
    name = DTYPE_NAME[dtype]

    def ours_call(idx, target):
        options.target = target
        sn.normalize_rows_async(ours.data_ptr(), name, rows, cols, ours.stride(0), idx.data_ptr(), "int64",
                                idx.numel(), options, scratch.data_ptr(), scratch_bytes, stream_handle())

    # Warm-up, untimed: first launches, occupancy queries, torch's kernels.
    idx = torch.randint(0, pick_rows, (NUM_INDICES,), device=DEVICE, generator=generator)
    ours_call(idx, max_norm)
    sn.rows_result(scratch.data_ptr(), stream_handle())
    with torch.no_grad():
        torch.embedding_renorm_(theirs, idx, max_norm, 2.0)
    max_norm *= 0.8

    ours_t, theirs_t, copy_rates, fractions, speedups = [], [], [], [], []
    our_timer, their_timer = Timer(), Timer()
    for rep in range(reps):
        idx = torch.randint(0, pick_rows, (NUM_INDICES,), device=DEVICE, generator=generator)
        check = rep == reps - 1
        if check:  # a sample of distinct rows, before, for the float64 check
            sample = torch.unique(idx)[:2000]
            before = ours[sample].clone()
        copy.run()
        with our_timer:
            ours_call(idx, max_norm)
        with torch.no_grad(), their_timer:
            torch.embedding_renorm_(theirs, idx, max_norm, 2.0)
        synchronize()
        stats = sn.rows_result(scratch.data_ptr(), stream_handle())
        if stats.rows_scaled != stats.distinct_rows:
            raise RuntimeError(f"only {stats.rows_scaled} of {stats.distinct_rows} rows were scaled")
        moved = (stats.distinct_rows + stats.rows_scaled) * cols * element + NUM_INDICES * 8
        t_ours, t_theirs = our_timer.seconds(), their_timer.seconds()
        ours_t.append(t_ours)
        theirs_t.append(t_theirs)
        copy_rates.append(copy.rate())
        fractions.append(moved / t_ours / copy.rate())
        speedups.append(t_theirs / t_ours)
        if check:
            want = float64_expected(before, max_norm).to(dtype)
            ulps = max_ulps(ours[sample], want, dtype)
            if not ulps <= ULPS_VS_FLOAT64[dtype]:
                raise RuntimeError(f"{name} D={cols}: ours is {ulps} ulps from the float64 rule")
        max_norm *= 0.8

    ulps = max_ulps(ours, theirs, dtype)
    if not ulps <= ULPS_VS_TORCH:
        raise RuntimeError(f"{name} D={cols}: results differ from torch by {ulps} ulps")
    del ours, theirs, scratch
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
    med = statistics.median
    return dict(rows=rows, pick_rows=pick_rows, ours_ms=med(ours_t) * 1e3, torch_ms=med(theirs_t) * 1e3,
                speedup=med(speedups), fraction=med(fractions), copy=med(copy_rates))


def dedup_check(generator, reps=20):
    """The cost of the alternative to our claim bitmap: a radix sort of the
    1,000,000 indices (torch.sort uses CUB's), for docs/CUDA.md."""
    times = []
    timer = Timer()
    for _ in range(reps):
        idx = torch.randint(0, TABLE_ROWS, (NUM_INDICES,), device=DEVICE, generator=generator)
        with timer:
            torch.sort(idx)
        synchronize()
        times.append(timer.seconds())
    return statistics.median(times)


# ---------------------------------------------------------------------------
# Matrix (CSR), against CuPy.

def make_csr(cp, cusp, rows, cols, nnz, seed):
    rs = cp.random.RandomState(seed)
    r = rs.randint(0, rows, nnz, dtype=cp.int64).astype(cp.int32)
    c = rs.randint(0, cols, nnz, dtype=cp.int64).astype(cp.int32)
    v = rs.standard_normal(nnz, dtype=cp.float32)
    m = cusp.coo_matrix((v, (r, c)), shape=(rows, cols)).tocsr()
    m.sum_duplicates()  # canonical: sorted column indices, no repeats
    assert m.has_canonical_format
    return m


def cupy_normalize(cp, cusp, w, axis):
    """What a CuPy user writes: the norms from the sparse sum of squares, then
    the stored values divided in place (zero vectors left alone)."""
    sq = cusp.csr_matrix((w.data * w.data, w.indices, w.indptr), shape=w.shape)
    norms = cp.sqrt(cp.asarray(sq.sum(axis=axis)).ravel())
    norms[norms == 0] = 1
    if axis == 0:
        w.data /= norms[w.indices]
    else:
        # The row of each stored value (cupy.repeat takes no array of counts).
        row_of = cp.searchsorted(w.indptr[1:], cp.arange(w.nnz, dtype=w.indptr.dtype), side="right")
        w.data /= norms[row_of]


def run_matrix_case(sn, copy, cp, cusp, axis, reps, base):
    ours = base.copy()
    theirs = base.copy()
    nnz = int(ours.nnz)
    options = sn.options(mode=1, target=1.0, p=2.0, eps=0.0)  # sklearn.preprocessing.normalize
    index_type = "int32" if ours.indices.dtype == cp.int32 else "int64"
    args = ("csr", ours.shape, nnz, ours.data.data.ptr, "float32", index_type, ours.indptr.data.ptr,
            ours.indices.data.ptr, None, None, axis, 0.0, options)
    scratch_bytes = sn.sparse_scratch_bytes(*args)
    if scratch_bytes == 0:
        raise RuntimeError("the scratch size query rejected the matrix")
    scratch = cp.empty(scratch_bytes, dtype=cp.uint8)

    def ours_call():
        sn.normalize_sparse_async(*args, scratch.data.ptr, scratch_bytes, cp.cuda.get_current_stream().ptr)

    # Warm-up, untimed.
    ours_call()
    sn.matrix_result(scratch.data.ptr, cp.cuda.get_current_stream().ptr)
    cupy_normalize(cp, cusp, theirs, axis)
    cp.cuda.get_current_stream().synchronize()

    # torch and CuPy share the device; time on one stream: torch's current
    # stream is the legacy default stream, which CuPy's default stream is too.
    our_timer, their_timer = Timer(), Timer()
    ours_t, theirs_t, fractions, speedups = [], [], [], []
    index_bytes = nnz * 4 if axis == 0 else (ours.shape[0] + 1) * 4
    moved = nnz * 4 * 2 + index_bytes
    for _ in range(reps):
        copy.run()
        with our_timer:
            ours_call()
        with their_timer:
            cupy_normalize(cp, cusp, theirs, axis)
        torch.cuda.synchronize()
        cp.cuda.get_current_stream().synchronize()
        stats = sn.matrix_result(scratch.data.ptr, cp.cuda.get_current_stream().ptr)
        if stats.nnz_after != nnz:
            raise RuntimeError("entries were removed without pruning")
        t_ours, t_theirs = our_timer.seconds(), their_timer.seconds()
        ours_t.append(t_ours)
        theirs_t.append(t_theirs)
        fractions.append(moved / t_ours / copy.rate())
        speedups.append(t_theirs / t_ours)

    # Against CuPy (both normalized reps + 1 times: after the first, each
    # call changes the values by rounding only) and against float64.
    diff = float(cp.abs(ours.data - theirs.data).max())
    if not diff <= 1e-5:
        raise RuntimeError(f"axis {axis}: ours differs from CuPy by {diff}")
    sq = cusp.csr_matrix((ours.data.astype(cp.float64) ** 2, ours.indices, ours.indptr), shape=ours.shape)
    norms = cp.sqrt(cp.asarray(sq.sum(axis=axis)).ravel())
    norms = norms[norms > 0]
    if not float(cp.abs(norms - 1).max()) <= 1e-5:
        raise RuntimeError(f"axis {axis}: our vectors do not have unit norm")
    med = statistics.median
    return dict(ours_ms=med(ours_t) * 1e3, cupy_ms=med(theirs_t) * 1e3, speedup=med(speedups),
                fraction=med(fractions), nnz=nnz)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True, help="path to libsparsenorm_c.so built with SPARSENORM_CUDA=ON")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="float32 D=128 and matrix axis 0 only")
    ap.add_argument("--no-matrix", action="store_true", help="skip the CuPy comparison")
    ap.add_argument("--dry-run", action="store_true",
                    help="check this script on a machine without GPU: the rows logic on the CPU library "
                         "(--lib libsparsenorm_c.so of any build), tiny sizes, no CuPy")
    args = ap.parse_args()

    if args.dry_run:
        global DEVICE, TABLE_ROWS, TABLE_BYTES, NUM_INDICES, COPY_BYTES, TORCH_MAX_ELEMENTS
        DEVICE, TABLE_ROWS, TABLE_BYTES, NUM_INDICES, COPY_BYTES = "cpu", 20_000, 2_000_000, 5_000, 1 << 24
        TORCH_MAX_ELEMENTS = 1_000_000  # exercises the capped-index case at D = 512
        args.no_matrix = True
        sn = HostRows(args.lib)
    elif not torch.cuda.is_available():
        print("compare_gpu.py: no CUDA device", file=sys.stderr)
        return 2
    else:
        sn = CudaLibrary(args.lib)
    if sn.device_count() < 1:
        print("compare_gpu.py: the library sees no CUDA device", file=sys.stderr)
        return 2
    generator = torch.Generator(device=DEVICE)
    generator.manual_seed(0)
    copy = Copy()
    for _ in range(3):
        copy.run()
    synchronize()

    device_name = torch.cuda.get_device_name() if DEVICE == "cuda" else "dry run on the CPU"
    print(f"{device_name}, torch {torch.__version__}, CUDA {torch.version.cuda}; "
          f"medians of {args.reps} repetitions; copy = 1 GiB device-to-device, bytes read + written")
    summary = []
    dtypes = [torch.float32] if args.quick else [torch.float32, torch.float16, torch.bfloat16]
    widths = [128] if args.quick else [16, 32, 128, 512]
    print(f"{'case':26s} {'rows':>10s} {'ours ms':>8s} {'torch ms':>9s} {'speedup':>8s} {'copy GB/s':>10s} "
          f"{'of copy':>8s}")
    for dtype in dtypes:
        for cols in widths:
            r = run_rows_case(sn, copy, dtype, cols, args.reps, generator)
            name = f"rows-gpu-{DTYPE_NAME[dtype]}-D{cols}"
            note = "" if r["pick_rows"] == r["rows"] else f"  (indices < {r['pick_rows']}: torch's 2^31 limit)"
            print(f"{name:26s} {r['rows']:10d} {r['ours_ms']:8.3f} {r['torch_ms']:9.3f} {r['speedup']:8.2f} "
                  f"{r['copy'] / 1e9:10.0f} {r['fraction']:8.2f}{note}", flush=True)
            summary.append(f"{name}: speedup_vs_torch={r['speedup']:.2f} fraction_of_copy={r['fraction']:.2f}")
    sort_s = dedup_check(generator)
    print(f"dedup alternative: torch.sort of {NUM_INDICES} int64 indices takes {sort_s * 1e6:.0f} us "
          "(compare with the rows-gpu-*-D16 times above, which include our claim bitmap)")

    if not args.no_matrix:
        import cupy as cp
        import cupyx.scipy.sparse as cusp
        base = make_csr(cp, cusp, 2_000_000, 100_000, 50_000_000, seed=1)
        print(f"CSR 2,000,000 x 100,000 float32, {int(base.nnz)} stored values; CuPy {cp.__version__}")
        print(f"{'case':26s} {'ours ms':>8s} {'cupy ms':>9s} {'speedup':>8s} {'of copy':>8s}")
        for axis in ([0] if args.quick else [0, 1]):
            r = run_matrix_case(sn, copy, cp, cusp, axis, args.reps, base)
            name = f"matrix-gpu-axis{axis}"
            print(f"{name:26s} {r['ours_ms']:8.3f} {r['cupy_ms']:9.3f} {r['speedup']:8.2f} {r['fraction']:8.2f}",
                  flush=True)
            summary.append(f"{name}: speedup_vs_cupy={r['speedup']:.2f} fraction_of_copy={r['fraction']:.2f}")

    print()
    for line in summary:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
