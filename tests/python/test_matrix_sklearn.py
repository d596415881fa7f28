"""The matrix normalization through the C interface against
sklearn.preprocessing.normalize (Debian's python3-sklearn) on dense arrays and
SciPy CSR, CSC and COO matrices, and against SciPy's meaning of repeated
coordinates. Run by ctest with SPARSENORM_C_LIBRARY pointing at
libsparsenorm_c.so."""

import os
import sys
import zlib

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from sparsenorm_ctypes import Library, SparsenormError  # noqa: E402

LIB = Library()

# sklearn divides by the norm (one rounding of x / n) where sparsenorm
# multiplies by the float32-rounded 1 / n (one rounding of x * s): a few
# float32 ulps apart; sklearn also sums float32 norms in float32.
RTOL = {np.float32: 2e-6, np.float64: 1e-13}


def random_sparse(rng, rows, cols, density, dtype, fmt, index_dtype=np.int32):
    m = sp.random(rows, cols, density=density, format="coo", dtype=np.float64, random_state=rng)
    m.data = (rng.standard_normal(m.nnz) * 10.0 ** rng.uniform(-2, 2, m.nnz)).astype(dtype)
    # Some empty rows and columns.
    keep = (m.row % 7 != 3) & (m.col % 5 != 2)
    m = sp.coo_matrix((m.data[keep], (m.row[keep], m.col[keep])), shape=(rows, cols))
    m = m.asformat(fmt)
    if fmt == "coo":
        m.row, m.col = m.row.astype(index_dtype), m.col.astype(index_dtype)
    else:
        m.indices, m.indptr = m.indices.astype(index_dtype), m.indptr.astype(index_dtype)
    return m


def dense_of(m):
    return m.toarray() if sp.issparse(m) else np.asarray(m)


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc", "coo"])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_matches_sklearn_normalize(fmt, axis, norm, dtype, index_dtype):
    if fmt == "dense" and index_dtype == np.int64:
        pytest.skip("dense matrices have no index arrays")
    rng = np.random.default_rng(zlib.crc32(f"{fmt} {axis} {norm}".encode()))
    rows, cols = 97, 61
    if fmt == "dense":
        x = (rng.standard_normal((rows, cols)) * 10.0 ** rng.uniform(-2, 2, (rows, 1))).astype(dtype)
        x[5] = 0.0
        x[:, 7] = 0.0
    else:
        x = random_sparse(rng, rows, cols, 0.2, dtype, fmt, index_dtype)
    expected = normalize(x, norm=norm, axis=axis)  # copies: x is left for us
    ours = x.copy()
    stats = (LIB.normalize_dense_(ours, axis=axis, norm=norm) if fmt == "dense"
             else LIB.normalize_sparse_(ours, axis=axis, norm=norm))
    assert stats.vectors == (cols if axis == 0 else rows)
    got = dense_of(ours)
    np.testing.assert_allclose(got, dense_of(expected), rtol=RTOL[dtype], atol=0)
    assert got.dtype == dtype
    if fmt != "dense":  # structure untouched
        assert ours.nnz == x.nnz
        if fmt == "coo":
            assert np.array_equal(ours.row, x.row) and np.array_equal(ours.col, x.col)
        else:
            assert np.array_equal(ours.indices, x.indices) and np.array_equal(ours.indptr, x.indptr)


@pytest.mark.parametrize("axis", [0, 1])
def test_in_place_like_sklearn_copy_false(axis):
    # sklearn's copy=False normalizes a CSR matrix's rows in place; columns it
    # returns as a new CSC matrix. Ours is in place on both axes.
    rng = np.random.default_rng(3)
    x = random_sparse(rng, 200, 150, 0.1, np.float64, "csr")
    data_address = x.data.ctypes.data
    expected = normalize(x.copy(), axis=axis, copy=False)
    LIB.normalize_sparse_(x, axis=axis)
    assert x.data.ctypes.data == data_address
    np.testing.assert_allclose(x.toarray(), expected.toarray(), rtol=1e-13)


def test_strided_dense_rows():
    rng = np.random.default_rng(4)
    buffer = rng.standard_normal((40, 12))
    before = buffer.copy()
    view = buffer[:, 2:9]  # row stride 12, 7 columns
    for axis in (0, 1):
        buffer[:] = before
        LIB.normalize_dense_(view, axis=axis)
        np.testing.assert_allclose(view, normalize(before[:, 2:9], axis=axis), rtol=1e-13)
        assert np.array_equal(buffer[:, :2], before[:, :2]) and np.array_equal(buffer[:, 9:], before[:, 9:])


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_repeated_coo_coordinates_mean_their_sum(axis, norm):
    # SciPy reads repeated coordinates as their sum (toarray, tocsr); the
    # norms must be those of that matrix.
    rng = np.random.default_rng(5)
    rows, cols, n = 50, 40, 600
    r = rng.integers(0, rows, n)
    c = rng.integers(0, cols, n)
    r = np.concatenate([r, r[:200]])  # 200 coordinates stored twice
    c = np.concatenate([c, c[:200]])
    v = rng.standard_normal(r.size)
    for order in ("as built", "by row", "by column"):
        if order == "by row":
            perm = np.lexsort((c, r))
        elif order == "by column":
            perm = np.lexsort((r, c))
        else:
            perm = np.arange(r.size)
        x = sp.coo_matrix((v[perm], (r[perm], c[perm])), shape=(rows, cols))
        assert not x.has_canonical_format
        expected = normalize(x.tocsr(), norm=norm, axis=axis)  # tocsr sums the repeats
        ours = x.copy()
        LIB.normalize_sparse_(ours, axis=axis, norm=norm)
        np.testing.assert_allclose(ours.toarray(), expected.toarray(), rtol=1e-12, atol=1e-15)
        assert ours.nnz == x.nnz  # the repeats stay stored, each scaled


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_repeated_csr_csc_coordinates_mean_their_sum(fmt):
    # A non-canonical CSR/CSC matrix (unsorted, repeated indices) reads as the
    # sum of its repeats too, as scipy's toarray() and sum_duplicates() do.
    rng = np.random.default_rng(6)
    x = random_sparse(rng, 60, 45, 0.2, np.float64, fmt)
    d = x.copy()
    # Repeat the first entry of every segment at the segment's end, unsorted.
    segments = x.shape[0] if fmt == "csr" else x.shape[1]
    data, indices, indptr = [], [], [0]
    for s in range(segments):
        b, e = x.indptr[s], x.indptr[s + 1]
        idx, val = list(x.indices[b:e][::-1]), list(x.data[b:e][::-1])
        if e > b:
            idx.append(x.indices[b])
            val.append(0.5)
        indices += idx
        data += val
        indptr.append(len(indices))
    cls = sp.csr_matrix if fmt == "csr" else sp.csc_matrix
    d = cls((np.array(data), np.array(indices, dtype=np.int32), np.array(indptr, dtype=np.int32)), shape=x.shape)
    canonical = d.copy()
    canonical.sum_duplicates()
    for axis in (0, 1):
        ours = d.copy()
        LIB.normalize_sparse_(ours, axis=axis)
        np.testing.assert_allclose(ours.toarray(), normalize(canonical, axis=axis).toarray(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc", "coo"])
def test_pruning(fmt):
    rng = np.random.default_rng(7)
    x = random_sparse(rng, 120, 80, 0.3, np.float64, "csr" if fmt == "dense" else fmt)
    if fmt == "dense":
        x = x.toarray()
    tau = 0.05
    expected = dense_of(normalize(x, axis=0))
    expected[np.abs(expected) < tau] = 0.0
    ours = x.copy()
    stats = (LIB.normalize_dense_(ours, axis=0, prune_below=tau) if fmt == "dense"
             else LIB.normalize_sparse_(ours, axis=0, prune_below=tau))
    np.testing.assert_allclose(dense_of(ours), expected, rtol=1e-13)
    assert stats.pruned > 0
    if fmt != "dense":
        assert ours.nnz == x.nnz - stats.pruned == np.count_nonzero(expected)
        assert np.all(np.abs(ours.data) >= tau)
        if fmt != "coo":
            assert ours.indptr[-1] == ours.nnz and ours.has_sorted_indices


def test_float16_against_float64():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((64, 33)).astype(np.float16)
    for axis in (0, 1):
        expected = normalize(x.astype(np.float64), axis=axis).astype(np.float16)
        ours = x.copy()
        LIB.normalize_dense_(ours, axis=axis)
        # One rounding of x * s, s in float32: within one float16 ulp of the
        # float64 result rounded.
        np.testing.assert_allclose(ours.astype(np.float64), expected.astype(np.float64), rtol=2 ** -10)


def test_errors_leave_everything_unchanged():
    rng = np.random.default_rng(9)
    x = random_sparse(rng, 30, 20, 0.3, np.float32, "csr")
    before = [a.copy() for a in (x.data, x.indices, x.indptr)]

    def unchanged():
        return all(np.array_equal(a, b) for a, b in zip((x.data, x.indices, x.indptr), before))

    x.indices[3] = 20
    before[1] = x.indices.copy()
    with pytest.raises(SparsenormError) as e:
        LIB.normalize_sparse_(x)
    assert e.value.code == 2 and "matrix.indices[3] = 20" in str(e.value)
    assert unchanged()
    x.indices[3] = 1
    x.indptr[4] = x.indptr[3] - 1
    before[1], before[2] = x.indices.copy(), x.indptr.copy()
    with pytest.raises(SparsenormError) as e:
        LIB.normalize_sparse_(x, axis=1)
    assert e.value.code == 1 and "matrix.indptr[4]" in str(e.value) and "must not decrease" in str(e.value)
    assert unchanged()
    with pytest.raises(SparsenormError) as e:
        LIB.normalize_sparse_(x, axis=2)
    assert "options.axis = 2" in str(e.value)
    assert unchanged()
    dense = np.ones((4, 3))
    with pytest.raises(SparsenormError) as e:
        LIB.normalize_dense_(dense, subset=[0, 3])
    assert e.value.code == 2 and "options.subset[1] = 3" in str(e.value)
    assert np.array_equal(dense, np.ones((4, 3)))


def test_subset():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((20, 30))
    ours = x.copy()
    stats = LIB.normalize_dense_(ours, axis=0, subset=np.array([4, 9, 4], dtype=np.int32))
    assert stats.vectors == 2
    expected = x.copy()
    expected[:, [4, 9]] = normalize(x[:, [4, 9]], axis=0)
    np.testing.assert_allclose(ours, expected, rtol=1e-13)
    assert np.array_equal(np.delete(ours, [4, 9], axis=1), np.delete(x, [4, 9], axis=1))
