"""The row operator through `import sparsenorm`: parity with torch.embedding_renorm_,
every dtype and index form, and proof that the array given is the array modified."""

import math

import numpy as np
import pytest
import torch

import sparsenorm
from module_util import NUMPY_DTYPES, TORCH_DTYPES, float64_oracle, random_table, snapshot, ulps

INF = math.inf


def torch_supports(dtype, p):
    try:
        torch.embedding_renorm_(torch.ones(3, 2, dtype=dtype), torch.tensor([0, 1]), 0.5, p)
        return True
    except RuntimeError:
        return False


# How near torch.embedding_renorm_ a result must be, as in test_c_api.py: a
# few ulps for float32/float64 (torch sums in another order, and accumulates
# p = 1 and p = 3 float32 rows in float32); for the 16-bit types torch
# computes the norm in the 16-bit type itself, so there we require to be no
# further from torch than torch is from the float64 answer, plus one ulp.
# Both bounds reject a wrong eps, p or skip rule by orders of magnitude.
@pytest.mark.parametrize("dtype", TORCH_DTYPES)
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, INF])
@pytest.mark.parametrize("cols", [1, 7, 33, 128])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_embedding_renorm_matches_torch(dtype, p, cols, index_dtype):
    if not torch_supports(dtype, p):
        pytest.skip(f"torch {torch.__version__} has no CPU embedding_renorm_ for {dtype}")
    rng = np.random.default_rng(cols * 7 + (99 if p == INF else int(p)))
    rows = 300
    base = random_table(rng, rows, cols, dtype)
    idx = torch.from_numpy(rng.integers(0, rows, size=500)).to(index_dtype)  # with repeats
    max_norm = float(np.median(np.linalg.norm(base.double().numpy(), ord=p, axis=1)))
    ours, theirs = base.clone(), base.clone()
    returned = sparsenorm.embedding_renorm_(ours, idx, max_norm, p)
    torch.embedding_renorm_(theirs, idx.long(), max_norm, p)
    assert returned is ours
    exact = float64_oracle(base, idx, max_norm, p)
    sixteen_bit = dtype in (torch.bfloat16, torch.float16)
    assert ulps(ours, exact, dtype) <= (1 if sixteen_bit else 8)
    if sixteen_bit:
        assert ulps(ours, theirs, dtype) <= ulps(theirs, exact, dtype) + 1
    else:
        assert ulps(ours, theirs, dtype) <= 16
    untouched = sorted(set(range(rows)) - set(idx.tolist()))
    assert torch.equal(ours[untouched], base[untouched])


@pytest.mark.parametrize("dtype", NUMPY_DTYPES)
@pytest.mark.parametrize("p", [1.0, 2.0, INF])
def test_numpy_tables_match_the_float64_rule(dtype, p):
    rng = np.random.default_rng(3)
    base = random_table(rng, 200, 24, torch.float16 if dtype == np.float16 else torch.float64)
    table = base.numpy().astype(dtype)
    idx = rng.integers(0, 200, size=300)
    max_norm = float(np.median(np.linalg.norm(table.astype(np.float64), ord=p, axis=1)))
    before = table.copy()
    stats = sparsenorm.normalize_rows_(table, idx, max_norm, p=p, eps=1e-7)
    exact = float64_oracle(torch.from_numpy(before), idx, max_norm, p)
    assert ulps(table, exact) <= (1 if dtype == np.float16 else 8)
    distinct = set(idx.tolist())
    norms = np.linalg.norm(before.astype(np.float64)[sorted(distinct)], ord=p, axis=1)
    assert stats == sparsenorm.RowStats(300, len(distinct), int((norms > max_norm).sum()), 0)


@pytest.mark.parametrize("p", [1.0, 2.0, INF])
def test_set_row_norms_puts_every_named_row_on_the_sphere(p):
    rng = np.random.default_rng(4)
    table = rng.standard_normal((100, 16)) * 10.0 ** rng.uniform(-3, 3, size=(100, 1))
    table[5] = 0.0
    before = table.copy()
    idx = [5, 7, 7, 9, 50, 99]
    stats = sparsenorm.set_row_norms_(table, idx, norm=2.5, p=p, eps=0.0)
    assert stats == sparsenorm.RowStats(6, 5, 4, 0)  # the zero row stays zero
    expected = float64_oracle(torch.from_numpy(before), idx, 2.5, p, eps=0.0, constant=True)
    assert ulps(table, expected) <= 4
    np.testing.assert_allclose(np.linalg.norm(table[[7, 9, 50, 99]], ord=p, axis=1), 2.5,
                               rtol=1e-14)
    assert np.array_equal(table[5], before[5])


def test_default_rule_is_caffe2s():
    # Skipped at equality (strict >) and scaled by target / (n + 1e-12).
    table = np.array([[3.0, 4.0], [6.0, 8.0]])
    sparsenorm.normalize_rows_(table, [0, 1], max_norm=5.0)
    assert table[0].tolist() == [3.0, 4.0]
    assert table[1].tolist() == [6.0 * 5.0 / (10.0 + 1e-12), 8.0 * 5.0 / (10.0 + 1e-12)]


@pytest.mark.parametrize("make", [
    lambda r: r.tolist(),
    lambda r: tuple(r.tolist()),
    lambda r: r.astype(np.int32),
    lambda r: r.astype(np.int64),
    lambda r: r.astype(np.int64).reshape(2, -1),            # any shape, as torch takes
    lambda r: np.repeat(r, 2)[::2],                         # a strided index array
    lambda r: np.frombuffer(r.astype(np.int64).tobytes(), dtype=np.int64),  # read-only
    lambda r: torch.from_numpy(r.astype(np.int32)),
    lambda r: torch.from_numpy(r.astype(np.int64)).reshape(2, -1).t(),  # non-contiguous
], ids=["list", "tuple", "int32", "int64", "2d", "strided", "readonly", "torch32", "torch_t"])
def test_every_index_form_gives_the_same_result(make):
    rng = np.random.default_rng(5)
    base = rng.standard_normal((64, 8)).astype(np.float32)
    r = rng.integers(0, 64, size=40)
    expected = base.copy()
    sparsenorm.normalize_rows_(expected, r, 0.5)
    table = base.copy()
    stats = sparsenorm.normalize_rows_(table, make(r), 0.5)
    assert np.array_equal(table, expected)
    assert stats.indices_seen == 40 and stats.distinct_rows == len(set(r.tolist()))


def test_scalar_range_and_empty_index_lists():
    table = np.full((5, 3), 2.0, dtype=np.float32)
    assert sparsenorm.normalize_rows_(table, []) == sparsenorm.RowStats(0, 0, 0, 0)
    assert sparsenorm.normalize_rows_(table, np.array([], dtype=np.int32)).indices_seen == 0
    assert np.all(table == 2.0)
    assert sparsenorm.normalize_rows_(table, 3).rows_scaled == 1
    assert sparsenorm.normalize_rows_(table, range(2)).rows_scaled == 2
    assert np.all(table[4] == 2.0)


def test_empty_tables():
    assert sparsenorm.normalize_rows_(np.zeros((0, 4), np.float32), []).indices_seen == 0
    assert sparsenorm.normalize_rows_(np.zeros((3, 0)), [0, 2]).distinct_rows == 2


# --- no hidden copy: the memory the caller holds is the memory written -------

def test_the_numpy_array_given_is_the_one_modified():
    table = np.full((10, 4), 1.0, dtype=np.float32)
    address = table.ctypes.data
    sparsenorm.normalize_rows_(table, [2], 1.0)
    assert table.ctypes.data == address
    np.testing.assert_allclose(table[2], 0.5, rtol=1e-6)


@pytest.mark.parametrize("view", [
    lambda b: b[:, 2:9],        # row stride 12, 7 columns
    lambda b: b[::3],           # every third row: row stride 36
    lambda b: b[1::2, 4:],      # both
    lambda b: b[:, 5:6],        # a single column
    lambda b: b[7:8, :],        # a single row
], ids=["columns", "rows", "both", "one-column", "one-row"])
@pytest.mark.parametrize("kind", ["numpy", "torch", "torch_over_numpy"])
def test_row_strided_views_are_modified_where_they_lie(view, kind):
    rng = np.random.default_rng(6)
    buffer = (rng.standard_normal((60, 12)) * 3).astype(np.float32)
    if kind == "numpy":
        holder = buffer
    elif kind == "torch":
        holder = torch.from_numpy(buffer.copy())
    else:
        holder = torch.from_numpy(buffer)  # a torch view of NumPy memory
    before = np.array(holder, copy=True)
    v = view(holder)
    n = v.shape[0]
    idx = [0, min(1, n - 1), min(1, n - 1), n - 1]
    sparsenorm.normalize_rows_(v, idx, 0.5)
    expected = torch.from_numpy(before.copy())
    torch.embedding_renorm_(view(expected), torch.tensor(idx), 0.5, 2.0)
    now = np.array(holder, copy=False) if kind != "torch" else holder.numpy()
    # Everything outside the view, bit for bit; the view as torch computes it.
    assert ulps(now, expected.numpy()) <= 4
    mask = np.ones(before.shape, bool)
    view(mask)[...] = False
    assert np.array_equal(now[mask], before[mask])
    assert not np.array_equal(now, before)
    if kind == "torch_over_numpy":
        assert np.array_equal(buffer, now)


def test_torch_tensors_are_modified_in_their_storage_and_autograd_sees_it():
    emb = torch.nn.Embedding(20, 6)
    storage = emb.weight.data_ptr()
    version = emb.weight._version
    with torch.no_grad():
        sparsenorm.normalize_rows_(emb.weight, torch.tensor([3, 4]), 0.1)
    assert emb.weight.data_ptr() == storage
    assert emb.weight._version > version
    assert torch.all(emb.weight[3:5].norm(dim=1) <= 0.1 + 1e-6)
    # A tensor saved for backward and then modified: backward must fail, as
    # after any in-place torch operation.
    x = torch.randn(4, 3, requires_grad=True)
    y = x * 1.0
    z = (y * y).sum()
    with torch.no_grad():
        sparsenorm.normalize_rows_(y, [0], 0.01)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()


def test_bfloat16_tensor_views_of_a_wider_table():
    rng = np.random.default_rng(8)
    base = random_table(rng, 40, 20, torch.bfloat16)
    ours, theirs = base.clone(), base.clone()
    sparsenorm.embedding_renorm_(ours[:, 3:17], [1, 2, 30], 0.3)
    torch.embedding_renorm_(theirs[:, 3:17], torch.tensor([1, 2, 30]), 0.3, 2.0)
    exact = float64_oracle(base[:, 3:17], [1, 2, 30], 0.3, 2.0)
    assert ulps(ours[:, 3:17], exact) <= 1
    assert torch.equal(ours[:, :3], base[:, :3]) and torch.equal(ours[:, 17:], base[:, 17:])
    assert ulps(ours, theirs) <= ulps(theirs[:, 3:17], exact) + 1


# --- options ------------------------------------------------------------------

def test_thread_counts_and_backends_agree():
    rng = np.random.default_rng(9)
    base = rng.standard_normal((5000, 40)).astype(np.float32)
    idx = rng.integers(0, 5000, size=4000)
    results = []
    for threads in (None, 0, 1, 2, 3):
        t = base.copy()
        results.append((t, sparsenorm.normalize_rows_(t, idx, 0.5, num_threads=threads)))
    for t, stats in results[1:]:
        assert np.array_equal(t, results[0][0]) and stats == results[0][1]
    ref = base.copy()
    assert sparsenorm.normalize_rows_(ref, idx, 0.5, backend="reference") == results[0][1]
    assert ulps(ref, results[0][0]) <= 8  # float32 sums against long double (rows_test.cc)


def test_non_finite_rows_are_skipped_and_counted():
    table = np.ones((6, 4), dtype=np.float32)
    table[1, 2] = np.nan
    table[2, 0] = np.inf
    stats = sparsenorm.normalize_rows_(table, [0, 1, 2, 3], 0.5)
    assert stats == sparsenorm.RowStats(4, 4, 2, 2)
    assert np.isnan(table[1, 2]) and np.all(table[1, [0, 1, 3]] == 1.0)
    assert np.isinf(table[2, 0]) and np.all(table[2, 1:] == 1.0)


def test_module_information():
    assert sparsenorm.__version__.count(".") == 2
    assert sparsenorm.default_thread_count() >= 1
    assert isinstance(sparsenorm.simd_target(), str) and sparsenorm.simd_target()
    assert isinstance(sparsenorm.has_cuda, bool)
    assert issubclass(sparsenorm.NonFiniteError, ValueError)


# ---------------------------------------------------------------------------
# Many tables in one call.


def test_many_tables_equal_one_call_each():
    rng = np.random.default_rng(31)
    dtypes = [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.float32]
    tables = [random_table(rng, 200 + 50 * k, 3 + 5 * k, d) for k, d in enumerate(dtypes)]
    tables[1] = tables[1].numpy()  # NumPy and PyTorch in one list
    lists = [rng.integers(0, len(t), size=300) for t in tables]
    lists[2] = torch.from_numpy(lists[2].astype(np.int32))
    bounds = [0.5, 1.0, 0.2, 0.05, 2.0]
    separate = [t.copy() if isinstance(t, np.ndarray) else t.clone() for t in tables]
    expected = [sparsenorm.normalize_rows_(t, i, b) for t, i, b in zip(separate, lists, bounds)]
    got = sparsenorm.normalize_rows_many_(tables, lists, bounds)
    assert got == expected
    for a, b in zip(tables, separate):
        (bytes_a, strides_a), (bytes_b, strides_b) = snapshot(a), snapshot(b)
        assert np.array_equal(bytes_a, bytes_b) and strides_a == strides_b


def test_many_tables_one_bad_index_changes_nothing():
    rng = np.random.default_rng(32)
    tables = [rng.standard_normal((100, 8)).astype(np.float32) for _ in range(6)]
    before = [t.copy() for t in tables]
    lists = [rng.integers(0, 100, size=50) for _ in tables]
    lists[4][7] = 100
    with pytest.raises(IndexError, match=r"tables\[4\]: indices\[7\] = 100 is out of range"):
        sparsenorm.normalize_rows_many_(tables, lists, 0.1)
    for t, b in zip(tables, before):
        assert np.array_equal(t, b)


def test_many_tables_refuses_shared_memory_and_mismatched_lists():
    t = np.ones((10, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"tables\[0\] and tables\[1\] share memory"):
        sparsenorm.normalize_rows_many_([t, t[5:]], [[0], [1]])
    with pytest.raises(ValueError, match="indices has 1 lists for 2 tables"):
        sparsenorm.normalize_rows_many_([t, t.copy()], [[0]])
    with pytest.raises(ValueError, match="max_norm has 3 values for 2 tables"):
        sparsenorm.normalize_rows_many_([t, t.copy()], [[0], [1]], [1.0, 1.0, 1.0])
    assert np.all(t == 1.0)
