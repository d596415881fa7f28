"""sparsenorm matrix: dense .npy, SciPy .npz (CSR, CSC, COO) and Matrix Market
files against scikit-learn's normalize and a float64 rule, read back with
NumPy and SciPy."""

import os
import zipfile

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from conftest import (fail, from_storage, load_table_npy, run, run_json, save_table_npy, snapshot,
                      to_storage, ulps)

P = {"l1": 1, "l2": 2, "max": np.inf}


def oracle(dense, axis, norm="l2", mode="constant", target=1.0, eps=0.0, prune=0.0):
    """The matrix.h rule in float64 on a dense array (NaN/inf vectors left)."""
    w = np.array(dense, dtype=np.float64)
    vectors = w.T if axis == 0 else w
    for v in vectors:  # views: writes go to w
        if not np.all(np.isfinite(v)):
            continue
        n = np.linalg.norm(v, ord=P[norm])
        if n == 0 or (mode == "max" and n <= target):
            continue
        v *= target / (n + eps)
    if prune > 0:
        w[np.abs(w) < prune] = 0
    return w


def random_sparse(rng, rows, cols, density, fmt, dtype, index_dtype=np.int32):
    m = sp.random(rows, cols, density=density, format="coo", dtype=np.float64, random_state=rng)
    m.data = (m.data - 0.5) * 10
    m = m.asformat(fmt).astype(dtype)
    if fmt == "coo":
        m.row, m.col = m.row.astype(index_dtype), m.col.astype(index_dtype)
    else:
        m.indices, m.indptr = m.indices.astype(index_dtype), m.indptr.astype(index_dtype)
    return m


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_dense_npy_matches_sklearn(tmp_path, dtype, axis, norm, order):
    rng = np.random.default_rng(axis * 10 + len(norm))
    w = np.asarray(rng.standard_normal((37, 23)) * 4, dtype=dtype, order=order)
    w[:, 3] = 0  # a zero column stays zero (no NaN)
    w[5, :] = 0
    np.save(tmp_path / "w.npy", w)
    out = run_json("matrix", tmp_path / "w.npy", "--axis", axis, "--norm", norm)
    got = np.load(tmp_path / "w.npy")
    assert got.dtype == dtype and np.isfortran(got) == (order == "F")
    expected = normalize(w.astype(np.float64), norm=norm, axis=axis)
    tol = 1e-6 if dtype == np.float32 else 1e-13
    assert np.allclose(got, expected, rtol=tol, atol=tol * np.abs(expected).max())
    assert out["vectors"] == (23 if axis == 0 else 37) and out["zero_vectors"] >= 1


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_dense_16_bit(tmp_path, dtype):
    rng = np.random.default_rng(1)
    base = to_storage(rng.standard_normal((20, 9)), dtype)
    save_table_npy(tmp_path / "w.npy", base, dtype)
    run("matrix", tmp_path / "w.npy", "--axis", "0", "--max-norm", "2")
    got = from_storage(load_table_npy(tmp_path / "w.npy", dtype), dtype)
    assert ulps(got, oracle(from_storage(base, dtype), 0, mode="max", target=2.0), dtype) <= 1


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("axis", [0, 1])
def test_npz_matches_sklearn(tmp_path, fmt, compressed, index_dtype, axis):
    rng = np.random.default_rng(2)
    m = random_sparse(rng, 60, 45, 0.1, fmt, np.float64, index_dtype)
    sp.save_npz(tmp_path / "w.npz", m, compressed=compressed)
    out = run_json("matrix", tmp_path / "w.npz", "--axis", axis, "-o", tmp_path / "o.npz")
    got = sp.load_npz(tmp_path / "o.npz")
    assert got.format == fmt and got.shape == m.shape and got.nnz == m.nnz
    expected = normalize(m.tocsr(), norm="l2", axis=axis).toarray()
    assert np.allclose(got.toarray(), expected, rtol=1e-13, atol=1e-15)
    with zipfile.ZipFile(tmp_path / "o.npz") as z, zipfile.ZipFile(tmp_path / "w.npz") as orig:
        assert sorted(z.namelist()) == sorted(orig.namelist())
        want = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
        assert all(i.compress_type == want for i in z.infolist())
        # Index arrays keep their dtype.
        name = "row.npy" if fmt == "coo" else "indices.npy"
        assert np.load(z.open(name)).dtype == index_dtype
    assert out["nnz_before"] == out["nnz_after"] == m.nnz


def test_npz_mixed_index_widths_and_float32(tmp_path):
    rng = np.random.default_rng(3)
    m = random_sparse(rng, 30, 30, 0.2, "csr", np.float32)
    np.savez(tmp_path / "w.npz", indices=m.indices.astype(np.int32), indptr=m.indptr.astype(np.int64),
             format=np.array(b"csr"), shape=np.array(m.shape), data=m.data)
    run("matrix", tmp_path / "w.npz", "--axis", "1", "--norm", "l1")
    got = sp.load_npz(tmp_path / "w.npz")
    assert got.dtype == np.float32
    assert np.allclose(got.toarray(), normalize(m.astype(np.float64), norm="l1", axis=1).toarray(), rtol=1e-6)
    with np.load(tmp_path / "w.npz") as z:
        assert z["indices"].dtype == np.int32 and z["indptr"].dtype == np.int64


def test_npz_coo_duplicates_count_as_their_sum(tmp_path):
    m = sp.coo_matrix((np.array([1.0, 2.0, 4.0]), (np.array([0, 0, 1]), np.array([0, 0, 0]))), shape=(2, 1))
    sp.save_npz(tmp_path / "w.npz", m)
    run("matrix", tmp_path / "w.npz", "--axis", "0")
    got = sp.load_npz(tmp_path / "w.npz")
    assert got.format == "coo" and got.nnz == 3  # the structure is kept
    assert np.allclose(got.toarray(), [[3 / 5], [4 / 5]])


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_npz_max_norm_eps_and_prune(tmp_path, fmt):
    rng = np.random.default_rng(4)
    m = random_sparse(rng, 50, 40, 0.2, fmt, np.float64)
    sp.save_npz(tmp_path / "w.npz", m)
    out = run_json("matrix", tmp_path / "w.npz", "--axis", "0", "--max-norm", "3", "--eps", "1e-3",
                   "--prune", "0.2")
    got = sp.load_npz(tmp_path / "w.npz")
    expected = oracle(m.toarray(), 0, mode="max", target=3.0, eps=1e-3, prune=0.2)
    assert np.allclose(got.toarray(), expected, rtol=1e-13, atol=1e-15)
    assert got.nnz == out["nnz_after"] == np.count_nonzero(expected)
    assert out["pruned"] == m.nnz - got.nnz > 0


MTX_GENERAL = """%%MatrixMarket matrix coordinate real general
% a comment that is kept
%
4 3 5
1 1 1.5
2 1 -2
4 3 3e0
3 2 +0.25
1 3 -1.0e+01

"""


@pytest.mark.parametrize("axis", [0, 1])
def test_mtx_general(tmp_path, axis):
    (tmp_path / "a.mtx").write_text(MTX_GENERAL)
    original = scipy.io.mmread(str(tmp_path / "a.mtx"))
    run("matrix", tmp_path / "a.mtx", "--axis", axis, "-o", tmp_path / "o.mtx")
    text = (tmp_path / "o.mtx").read_text()
    assert text.startswith("%%MatrixMarket matrix coordinate real general\n% a comment that is kept\n")
    got = scipy.io.mmread(str(tmp_path / "o.mtx"))
    assert np.allclose(got.toarray(), normalize(original.tocsr(), axis=axis).toarray(), rtol=1e-15)


@pytest.mark.parametrize("field,symmetry", [("integer", "general"), ("pattern", "general"),
                                            ("real", "symmetric"), ("integer", "skew-symmetric"),
                                            ("pattern", "symmetric")])
def test_mtx_fields_and_symmetries(tmp_path, field, symmetry):
    rng = np.random.default_rng(5)
    dense = np.triu(rng.integers(-5, 6, size=(6, 6)).astype(np.float64), k=1 if symmetry == "skew-symmetric" else 0)
    if field == "pattern":
        dense = (dense != 0).astype(np.float64)
    if symmetry == "symmetric":
        dense = dense + np.triu(dense, 1).T
    elif symmetry == "skew-symmetric":
        dense = dense - dense.T
    scipy.io.mmwrite(str(tmp_path / "a.mtx"), sp.coo_matrix(dense), field=field, symmetry=symmetry)
    assert f"{field} {symmetry}" in (tmp_path / "a.mtx").read_text().splitlines()[0]
    run("matrix", tmp_path / "a.mtx", "--axis", "0")
    assert (tmp_path / "a.mtx").read_text().startswith("%%MatrixMarket matrix coordinate real general")
    got = scipy.io.mmread(str(tmp_path / "a.mtx")).toarray()
    assert np.allclose(got, normalize(dense, axis=0), rtol=1e-15)


def test_in_place_dense_and_refusals(tmp_path):
    w = np.random.default_rng(6).standard_normal((10, 4)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    inode = os.stat(tmp_path / "w.npy").st_ino
    run("matrix", tmp_path / "w.npy", "--axis", "1", "--in-place")
    assert os.stat(tmp_path / "w.npy").st_ino == inode
    assert np.allclose(np.load(tmp_path / "w.npy"), normalize(w, axis=1), rtol=1e-6)
    sp.save_npz(tmp_path / "s.npz", sp.random(3, 3, density=0.5, random_state=1))
    before = snapshot(tmp_path)
    assert "compressed and checksummed" in fail("matrix", tmp_path / "s.npz", "--axis", "0", "--in-place", rc=2)
    assert snapshot(tmp_path) == before


def test_empty_and_zero_matrices(tmp_path):
    sp.save_npz(tmp_path / "e.npz", sp.csr_matrix((0, 5)))
    out = run_json("matrix", tmp_path / "e.npz", "--axis", "0")
    assert out["vectors"] == 5 and sp.load_npz(tmp_path / "e.npz").shape == (0, 5)
    np.save(tmp_path / "z.npy", np.zeros((3, 3)))
    run("matrix", tmp_path / "z.npy", "--axis", "0")
    assert np.array_equal(np.load(tmp_path / "z.npy"), np.zeros((3, 3)))
