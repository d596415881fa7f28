"""The CUDA C interface (include/sparsenorm/c_api_cuda.h) against
torch.embedding_renorm_ on the GPU and against the same rule in float64.
Needs a CUDA device and a CUDA build of PyTorch; without them the module is
skipped (ctest lists it as "Skipped" by the reason it prints; run as a
script, it exits with code 77). Runs under pytest, or as a plain script on machines
without pytest:  SPARSENORM_C_LIBRARY=.../libsparsenorm_c.so python3 test_cuda_c_api.py"""

import itertools
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from sparsenorm_ctypes import SparsenormError  # noqa: E402
from sparsenorm_cuda_ctypes import CudaLibrary  # noqa: E402

SKIP = 77


def _skip(reason):
    if "pytest" in sys.modules:
        import pytest
        pytest.skip(reason, allow_module_level=True)
    print(reason)
    sys.exit(SKIP)


if not torch.cuda.is_available():
    _skip("no CUDA device (or a CPU-only PyTorch): skipped")
LIB = CudaLibrary()
if LIB.device_count() < 1:
    _skip("the library sees no CUDA device: skipped")

MANTISSA_BITS = {torch.float32: 23, torch.float64: 52, torch.bfloat16: 7, torch.float16: 10}
MIN_EXPONENT = {torch.float32: -126, torch.float64: -1022, torch.bfloat16: -126, torch.float16: -14}
NAMES = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def ulps(a, b, dtype):
    a, b = a.double(), b.double()
    m = torch.maximum(a.abs(), b.abs()).clamp_min(1e-300)
    exponent = torch.floor(torch.log2(m)).clamp_min(MIN_EXPONENT[dtype])
    return ((a - b).abs() / torch.exp2(exponent - MANTISSA_BITS[dtype])).max().item()


def float64_oracle(base, idx, max_norm, p):
    w = base.double().clone()
    for r in sorted(set(idx.tolist())):
        n = torch.linalg.vector_norm(w[r], ord=p).item()
        if n > max_norm:
            w[r] *= max_norm / (n + 1e-7)
    return w.to(base.dtype)


def renorm(table, idx, max_norm, p=2.0, **options):
    """torch.embedding_renorm_ semantics through the asynchronous C calls."""
    bytes_ = LIB.rows_scratch_bytes(table.shape[0], idx.numel())
    scratch = torch.empty(bytes_, dtype=torch.uint8, device="cuda")
    stream = torch.cuda.current_stream().cuda_stream
    o = LIB.options(target=max_norm, p=p, eps=1e-7, **options)
    LIB.normalize_rows_async(table.data_ptr(), NAMES[table.dtype], table.shape[0], table.shape[1],
                             table.stride(0), idx.data_ptr(), str(idx.dtype).replace("torch.", ""), idx.numel(),
                             o, scratch.data_ptr(), bytes_, stream)
    return LIB.rows_result(scratch.data_ptr(), stream)


CASES = list(itertools.product([torch.float32, torch.float64, torch.float16, torch.bfloat16],
                               [1.0, 2.0, 3.0, float("inf")], [1, 7, 16, 33, 128, 1000],
                               [torch.int64, torch.int32]))


def check_matches_torch(dtype, p, cols, index_dtype):
    gen = torch.Generator(device="cuda")
    gen.manual_seed(cols * 13 + int(p if p != float("inf") else 99))
    rows = 500
    scales = 10.0 ** (torch.rand(rows, 1, generator=gen, device="cuda") * 2 - 1)
    base = (torch.randn(rows, cols, generator=gen, device="cuda", dtype=torch.float64) * scales).to(dtype)
    idx = torch.randint(0, rows, (800,), generator=gen, device="cuda").to(index_dtype)
    max_norm = float(torch.linalg.vector_norm(base.double(), ord=p, dim=1).median())
    ours, theirs = base.clone(), base.clone()
    stats = renorm(ours, idx, max_norm, p)
    with torch.no_grad():
        torch.embedding_renorm_(theirs, idx.long(), max_norm, p)
    assert stats.distinct_rows == len(set(idx.tolist()))
    exact = float64_oracle(base.cpu(), idx.cpu(), max_norm, p)
    sixteen = dtype in (torch.float16, torch.bfloat16)
    assert ulps(ours.cpu(), exact, dtype) <= (1 if sixteen else 8 if dtype == torch.float32 else 16)
    assert ulps(ours.cpu(), theirs.cpu(), dtype) <= ulps(theirs.cpu(), exact, dtype) + (1 if sixteen else 16)
    untouched = sorted(set(range(rows)) - set(idx.tolist()))
    assert torch.equal(ours[untouched], base[untouched])


def test_matches_torch_and_float64():
    for case in CASES:
        check_matches_torch(*case)


def test_repeats_are_applied_once_whatever_the_order():
    base = torch.randn(1000, 64, device="cuda")
    idx = torch.randint(0, 1000, (100000,), device="cuda")
    a, b, once = base.clone(), base.clone(), base.clone()
    renorm(a, idx, 1.0, mode=1)  # constant norm: a second pass would change the bits
    renorm(b, idx[torch.randperm(idx.numel(), device="cuda")], 1.0, mode=1)
    renorm(once, torch.unique(idx), 1.0, mode=1)
    assert torch.equal(a, b) and torch.equal(a, once)


def test_out_of_range_index_is_reported_and_nothing_changes():
    table = torch.ones(10, 4, device="cuda")
    before = table.clone()
    try:
        renorm(table, torch.tensor([1, 2, 10], device="cuda"), 0.5)
    except SparsenormError as e:
        assert e.code == 2 and "indices[2] = 10" in str(e)
    else:
        raise AssertionError("no error")
    assert torch.equal(table, before)


def test_nonfinite_row_under_error_policy():
    table = torch.ones(10, 4, device="cuda")
    table[6, 1] = float("nan")
    before = table.clone()
    try:
        renorm(table, torch.tensor([1, 6, 2], device="cuda"), 0.5, nonfinite_error=1)
    except SparsenormError as e:
        assert e.code == 4 and "row 6 (indices[1])" in str(e)
    else:
        raise AssertionError("no error")
    assert torch.equal(table.isnan(), before.isnan()) and torch.equal(table.nan_to_num(), before.nan_to_num())


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_"):
            fn()
            print(f"{name}: passed")
