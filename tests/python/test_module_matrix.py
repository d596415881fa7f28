"""sparsenorm.normalize against sklearn.preprocessing.normalize, on dense arrays
and SciPy CSR, CSC and COO matrices: values changed in place, structure
untouched, pruning returning a new matrix, errors leaving X unchanged."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.preprocessing import normalize as sk_normalize

import sparsenorm
from module_util import snapshot, ulps, unchanged

SPARSE = [sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array, sp.coo_array]
NORMS = ["l1", "l2", "max"]


def random_dense(rng, rows, cols, dtype=np.float64, zero_column=True):
    X = rng.standard_normal((rows, cols)) * 10.0 ** rng.uniform(-2, 2, size=(1, cols))
    if zero_column:
        X[:, cols // 2] = 0.0  # a zero vector each way
        X[rows // 2, :] = 0.0
    return X.astype(dtype)


def random_sparse(rng, rows, cols, kind, dtype=np.float64):
    X = sp.random(rows, cols, density=0.2, random_state=rng, dtype=np.float64) * 5.0
    return kind(X.astype(dtype))


def structure(X):
    if X.format == "coo":
        return X.row.copy(), X.col.copy()
    return X.indptr.copy(), X.indices.copy()


def bound(dtype):
    return 8 if dtype == np.float32 else 16


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("order", ["C", "F"])
def test_dense_matches_sklearn(norm, axis, dtype, order):
    rng = np.random.default_rng(axis * 10 + len(norm))
    X = np.array(random_dense(rng, 57, 23, dtype), order=order)
    expected = sk_normalize(X, norm=norm, axis=axis)
    address = X.ctypes.data
    Y = sparsenorm.normalize(X, norm, axis=axis)
    assert Y is X and X.ctypes.data == address  # in place, in X's own memory
    assert ulps(X, expected) <= bound(dtype)


@pytest.mark.parametrize("kind", SPARSE)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_matches_sklearn_in_place_with_structure_untouched(kind, norm, axis, dtype):
    rng = np.random.default_rng(axis * 10 + len(norm))
    X = random_sparse(rng, 80, 60, kind, dtype)
    expected = sk_normalize(X, norm=norm, axis=axis)
    before_structure = structure(X)
    data = X.data
    Y, stats = sparsenorm.normalize(X, norm, axis=axis, return_stats=True)
    assert Y is X and X.data is data  # the very value array, modified
    for a, b in zip(structure(X), before_structure):
        assert np.array_equal(a, b)
    assert ulps(X.toarray(), expected.toarray()) <= bound(dtype)
    assert stats.vectors == X.shape[1 - axis]
    assert stats.nnz_before == stats.nnz_after == X.nnz and stats.pruned == 0


def test_row_strided_dense_view_and_torch_tensor():
    rng = np.random.default_rng(3)
    buffer = random_dense(rng, 40, 30)
    before = buffer.copy()
    view = buffer[5:35, 4:20]
    sparsenorm.normalize(view, axis=0)
    expected = before.copy()
    expected[5:35, 4:20] = sk_normalize(before[5:35, 4:20], axis=0)
    assert ulps(buffer, expected) <= 16
    assert np.array_equal(buffer[:5], before[:5]) and np.array_equal(buffer[:, 20:], before[:, 20:])
    t = torch.from_numpy(random_dense(rng, 20, 10))
    expected = sk_normalize(t.numpy(), norm="l1", axis=1)
    assert sparsenorm.normalize(t, "l1", axis=1) is t
    assert ulps(t, expected) <= 16


def test_default_axis_is_columns():
    X = np.array([[3.0, 0.0], [4.0, 2.0]])
    sparsenorm.normalize(X)
    # 3 * (1 / 5) rounded once: the scale is applied as a product (rows.h).
    assert X.tolist() == [[3 * 0.2, 0.0], [4 * 0.2, 1.0]]


def test_copy_leaves_x_alone():
    rng = np.random.default_rng(4)
    X = random_dense(rng, 10, 6)
    before = X.copy()
    Y = sparsenorm.normalize(X, copy=True)
    assert Y is not X and np.array_equal(X, before)
    assert ulps(Y, sk_normalize(before, axis=0)) <= 16
    S = random_sparse(rng, 30, 20, sp.csr_matrix)
    S_before = S.copy()
    T = sparsenorm.normalize(S, axis=1, copy=True)
    assert T is not S and (S != S_before).nnz == 0


@pytest.mark.parametrize("p", [1.0, 3.0, math.inf])
def test_max_norm_subset_and_general_p(p):
    rng = np.random.default_rng(5)
    X = random_dense(rng, 30, 12)
    before = X.copy()
    subset = [1, 3, 3, 11]
    stats = sparsenorm.normalize(X, p, axis=0, max_norm=2.0, eps=1e-7, subset=subset,
                                 return_stats=True)[1]
    expected = before.copy()
    scaled = 0
    for j in sorted(set(subset)):
        n = np.linalg.norm(before[:, j], ord=p)
        if n > 2.0:
            expected[:, j] *= 2.0 / (n + 1e-7)
            scaled += 1
    assert ulps(X, expected) <= 16
    assert stats.vectors == 3 and stats.vectors_scaled == scaled


def test_coo_repeated_coordinates_count_as_their_sum():
    X = sp.coo_matrix((np.array([1.0, 2.0, 4.0]), (np.array([0, 0, 1]), np.array([0, 0, 0]))),
                      shape=(2, 2))
    sparsenorm.normalize(X, axis=0)
    assert np.allclose(X.data, np.array([1.0, 2.0, 4.0]) / 5.0)  # ||(3, 4)|| = 5


def test_dense_pruning_in_place():
    X = np.array([[3.0, 1.0], [4.0, 100.0]])
    Y, stats = sparsenorm.normalize(X, axis=0, prune_below=0.7, return_stats=True)
    assert Y is X
    assert X[0, 0] == 0.0 and X[0, 1] == 0.0 and stats.pruned == 2


@pytest.mark.parametrize("kind", SPARSE)
def test_sparse_pruning_returns_a_new_matrix_and_leaves_x_alone(kind):
    rng = np.random.default_rng(6)
    X = random_sparse(rng, 50, 40, kind)
    before = X.copy()
    Y, stats = sparsenorm.normalize(X, axis=1, prune_below=0.2, return_stats=True)
    assert Y is not X and (X != before).nnz == 0 and X.nnz == before.nnz
    expected = sk_normalize(before, axis=1).toarray()
    expected[np.abs(expected) < 0.2] = 0.0
    assert ulps(Y.toarray(), expected) <= 16
    assert Y.nnz == stats.nnz_after == before.nnz - stats.pruned and stats.pruned > 0
    assert type(Y) is type(X)
    if Y.format != "coo":
        Y.check_format(full_check=True)


def test_mixed_index_dtypes():
    rng = np.random.default_rng(7)
    X = random_sparse(rng, 30, 20, sp.csr_matrix)
    X.indptr = X.indptr.astype(np.int64)
    X.indices = X.indices.astype(np.int32)
    expected = sk_normalize(X, axis=0)
    sparsenorm.normalize(X, axis=0)
    assert ulps(X.toarray(), expected.toarray()) <= 16
    Y = sparsenorm.normalize(X, axis=0, prune_below=0.3)
    assert Y.nnz < X.nnz


# --- errors: the exception, the message, X unchanged ------------------------------

def sparse_snapshot(X):
    return [snapshot(a) for a in (X.data, *structure(X))]


@pytest.mark.parametrize("kwargs,exception,match", [
    ({"axis": 2}, ValueError,
     r"options.axis = 2 is invalid: use 0 to normalize columns or 1 to normalize rows\."),
    ({"norm": "l3"}, ValueError, r"norm='l3' is not one of 'l1', 'l2', 'max'"),
    ({"norm": 0.0}, ValueError, r"options.p = 0 is invalid"),
    ({"eps": -1.0}, ValueError, r"options.eps = -1 is invalid"),
    ({"max_norm": -1.0}, ValueError, r"options.target = -1 is invalid"),
    ({"prune_below": -0.5}, ValueError,
     r"options.prune_below = -0.5 is invalid: the pruning threshold must be >= 0"),
    ({"prune_below": math.nan}, ValueError, r"options.prune_below = nan is invalid"),
    ({"subset": [0, 99]}, IndexError,
     r"options.subset\[1\] = 99 is out of range for 10 columns \(valid indices are 0 to 9\)\."),
    ({"subset": [0.5]}, TypeError, r"subset must be an integer array"),
    ({"axis": "rows"}, TypeError, r"axis must be 0 or 1"),
])
@pytest.mark.parametrize("sparse", [False, True])
def test_bad_arguments(kwargs, exception, match, sparse):
    rng = np.random.default_rng(8)
    X = random_sparse(rng, 20, 10, sp.csr_matrix) if sparse else random_dense(rng, 20, 10)
    before = sparse_snapshot(X) if sparse else snapshot(X)
    with pytest.raises(exception, match=match):
        sparsenorm.normalize(X, **kwargs)
    if sparse:
        assert all(unchanged(a, b) for a, b in zip((X.data, *structure(X)), before))
    else:
        assert unchanged(X, before)


def test_stored_index_out_of_range():
    X = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([0, 5, 1]), np.array([0, 2, 3])),
                      shape=(2, 3))
    before = sparse_snapshot(X)
    with pytest.raises(IndexError, match=r"matrix.indices\[1\] = 5 \(an entry of row 0\) is out of "
                                         r"range for 3 columns"):
        sparsenorm.normalize(X)
    assert all(unchanged(a, b) for a, b in zip((X.data, *structure(X)), before))


def test_non_finite_vectors():
    X = np.array([[1.0, np.nan], [2.0, 1.0]])
    stats = sparsenorm.normalize(X, return_stats=True)[1]
    assert stats.nonfinite_vectors == 1 and np.isnan(X[0, 1]) and X[1, 1] == 1.0
    X = np.array([[1.0, np.inf], [2.0, 1.0]])
    before = snapshot(X)
    with pytest.raises(sparsenorm.NonFiniteError,
                       match=r"column 1 holds NaN or infinity .*nothing was modified"):
        sparsenorm.normalize(X, non_finite="error")
    assert unchanged(X, before)


@pytest.mark.parametrize("X,exception,match", [
    (sp.lil_matrix((3, 3)), TypeError, r"'lil' format; sparsenorm normalizes CSR, CSC and COO"),
    (sp.dok_matrix((3, 3)), TypeError, r"X.tocsr\(\)"),
    (np.ones((3, 3), np.int64), TypeError, r"X has dtype int64"),
    (sp.csr_matrix(np.eye(3, dtype=np.int64)), TypeError, r"X.data has dtype int64"),
    (np.ones(3), ValueError, r"X must be a 2-D array"),
    (np.ones((4, 6))[::2, ::2], TypeError, r"neither its rows nor its columns are contiguous"),
    ([[1.0, 2.0]], TypeError, r"X must be an array that sparsenorm can modify in place"),
])
def test_unsupported_inputs(X, exception, match):
    with pytest.raises(exception, match=match):
        sparsenorm.normalize(X)


def test_read_only_values():
    X = sp.csr_matrix(np.eye(3))
    X.data.setflags(write=False)
    with pytest.raises(ValueError, match="X.data is a read-only NumPy array"):
        sparsenorm.normalize(X)
