"""The C interface against torch.embedding_renorm_ (Debian's python3-torch)
on random tables, and its error reporting. Run by ctest with
SPARSENORM_C_LIBRARY pointing at libsparsenorm_c.so."""

import os
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from sparsenorm_ctypes import Library, SparsenormError  # noqa: E402

LIB = Library()

MANTISSA_BITS = {torch.float32: 23, torch.float64: 52, torch.bfloat16: 7, torch.float16: 10}
MIN_EXPONENT = {torch.float32: -126, torch.float64: -1022, torch.bfloat16: -126, torch.float16: -14}


def ulps(a, b, dtype):
    """max |a - b| in units in the last place of dtype at the larger magnitude."""
    a, b = a.double(), b.double()
    m = torch.maximum(a.abs(), b.abs()).clamp_min(1e-300)
    exponent = torch.floor(torch.log2(m)).clamp_min(MIN_EXPONENT[dtype])
    return ((a - b).abs() / torch.exp2(exponent - MANTISSA_BITS[dtype])).max().item()


# How far from torch.embedding_renorm_ a value may be, in ulps, for float32
# and float64: torch sums in another order and, for p = 1 and p = 3 on
# float32 rows, accumulates in float32, several ulps. In float64 these bounds
# still tell eps = 1e-7 from any other eps (a relative change of 1e-8 in the
# scale is tens of millions of float64 ulps). For the 16-bit types
# torch computes the norm in the storage type itself (row.norm() returns a
# bfloat16 or float16), which puts its results several ulps from the exact
# ones; there we require to be no further from torch than torch is from the
# float64 answer, plus one ulp.
TORCH_ULPS = {torch.float32: 16, torch.float64: 16}


def float64_oracle(base, idx, max_norm, p):
    """torch.embedding_renorm_'s rule computed in float64, then rounded."""
    w = base.double().clone()
    for r in sorted(set(idx.tolist())):
        n = torch.linalg.vector_norm(w[r], ord=p).item()
        if n > max_norm:
            w[r] *= max_norm / (n + 1e-7)
    return w.to(base.dtype)


def random_table(rng, rows, cols, dtype):
    # float16 stays small: torch computes a float16 row's norm in float16, so
    # sum |x|^p overflows to infinity (and torch zeroes the row) long before
    # the values themselves do. We compute it in float32 and handle those
    # rows; see test_float16_rows_whose_norm_overflows_float16.
    high = 0 if dtype == torch.float16 else 2
    scales = 10.0 ** rng.uniform(-2, high, size=(rows, 1))
    return torch.from_numpy(rng.standard_normal((rows, cols)) * scales).to(dtype)


def torch_supports(dtype, p):
    try:
        w = torch.ones(3, 2, dtype=dtype)
        torch.embedding_renorm_(w, torch.tensor([0, 1]), 0.5, p)
        return True
    except RuntimeError:
        return False


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, float("inf")])
@pytest.mark.parametrize("cols", [1, 7, 16, 33, 128])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_matches_torch_embedding_renorm(dtype, p, cols, index_dtype):
    if not torch_supports(dtype, p):
        pytest.skip(f"torch {torch.__version__} has no CPU embedding_renorm_ for {dtype}")
    rng = np.random.default_rng(cols * 7 + int(p if p != float("inf") else 99))
    rows = 300
    base = random_table(rng, rows, cols, dtype)
    idx = torch.from_numpy(rng.integers(0, rows, size=500)).to(index_dtype)  # repeats
    max_norm = float(np.median(np.linalg.norm(base.double().numpy(), ord=p, axis=1)))
    ours, theirs = base.clone(), base.clone()
    stats = LIB.embedding_renorm_(ours, idx, max_norm, p)
    torch.embedding_renorm_(theirs, idx.long(), max_norm, p)
    assert stats.distinct_rows == len(set(idx.tolist()))
    assert 0 < stats.rows_scaled < stats.distinct_rows
    exact = float64_oracle(base, idx, max_norm, p)
    sixteen_bit = dtype in (torch.bfloat16, torch.float16)
    # Against the same rule in float64: within one ulp of the storage type
    # (the scale is rounded to float32 on the way; float32 and float64 sums
    # add a few ulps).
    assert ulps(ours, exact, dtype) <= (1 if sixteen_bit else 8)
    if sixteen_bit:
        assert ulps(ours, theirs, dtype) <= ulps(theirs, exact, dtype) + 1
    else:
        assert ulps(ours, theirs, dtype) <= TORCH_ULPS[dtype]
    # Rows never indexed are untouched, bit for bit.
    untouched = sorted(set(range(rows)) - set(idx.tolist()))
    assert torch.equal(ours[untouched], base[untouched])


def test_float16_rows_whose_norm_overflows_float16():
    # ||x||_2 = 300 * sqrt(64) = 2400: fine, but sum x^2 = 5.76e6 > 65504.
    table = torch.full((4, 64), 300.0, dtype=torch.float16)
    idx = torch.tensor([0, 2])
    ours = table.clone()
    LIB.embedding_renorm_(ours, idx, 1.0)
    assert torch.allclose(ours[0].double(), torch.full((64,), 0.125, dtype=torch.float64), rtol=1e-3)
    assert torch.equal(ours[1], table[1])


def test_strided_rows_of_a_wider_buffer():
    rng = np.random.default_rng(5)
    buffer = random_table(rng, 50, 12, torch.float32)
    view = buffer[:, 2:9]  # row stride 12, 7 columns
    before = buffer.clone()
    idx = torch.tensor([3, 4, 4, 40])
    LIB.embedding_renorm_(view, idx, 0.5)
    expected = before.clone()
    torch.embedding_renorm_(expected[:, 2:9], idx, 0.5, 2.0)
    assert ulps(buffer, expected, torch.float32) <= 4
    assert torch.equal(buffer[:, :2], before[:, :2]) and torch.equal(buffer[:, 9:], before[:, 9:])


def test_out_of_range_index_is_reported_and_nothing_changes():
    table = torch.ones(10, 4)
    before = table.clone()
    with pytest.raises(SparsenormError) as e:
        LIB.embedding_renorm_(table, torch.tensor([1, 2, 10]), 0.5)
    assert e.value.code == 2  # StatusCode::kOutOfRange
    assert "indices[2] = 10" in str(e.value)
    assert torch.equal(table, before)


def test_bad_options_are_reported_and_nothing_changes():
    table = torch.ones(10, 4)
    before = table.clone()
    with pytest.raises(SparsenormError) as e:
        LIB.embedding_renorm_(table, torch.tensor([1]), -1.0)
    assert e.value.code == 1 and "options.target = -1" in str(e.value)
    with pytest.raises(SparsenormError) as e:
        LIB.embedding_renorm_(table, torch.tensor([1]), 1.0, 0.0)
    assert "options.p = 0" in str(e.value)
    assert torch.equal(table, before)


def test_many_tables_match_one_call_per_table():
    rng = np.random.default_rng(5)
    shapes = [(50, 3), (200, 16), (7, 1), (120, 33)]
    dtypes = [torch.float32, torch.float64, torch.bfloat16, torch.float32]
    tables = [random_table(rng, r, c, d) for (r, c), d in zip(shapes, dtypes)]
    indices = [torch.from_numpy(rng.integers(0, r, size=3 * r)).to(torch.int32 if k % 2 else torch.int64)
               for k, (r, _) in enumerate(shapes)]
    expected = [t.clone() for t in tables]
    for t, i in zip(expected, indices):
        LIB.embedding_renorm_(t, i, 0.75)
    stats = LIB.embedding_renorm_many_(tables, indices, 0.75)
    for t, e, i, s in zip(tables, expected, indices, stats):
        assert torch.equal(t, e)
        assert s.distinct_rows == len(set(i.tolist())) and s.rows_scaled > 0


def test_many_tables_bad_entry_is_named_and_nothing_changes():
    tables = [torch.ones(10, 4), torch.ones(5, 2)]
    before = [t.clone() for t in tables]
    with pytest.raises(SparsenormError) as e:
        LIB.embedding_renorm_many_(tables, [torch.tensor([1, 2]), torch.tensor([0, 5])], 0.5)
    assert e.value.code == 2 and str(e.value).startswith("entries[1]: ") and "indices[1] = 5" in str(e.value)
    assert all(torch.equal(t, b) for t, b in zip(tables, before))


def test_version():
    assert LIB.version().count(".") == 2
