"""sparsenorm stats: the norm distribution against NumPy/SciPy."""

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp

from conftest import (ST_DTYPE, from_storage, random_table, run, run_json, save_npy_raw,
                      write_safetensors)

QUANTILES = {"min": 0, "p1": 0.01, "p5": 0.05, "p25": 0.25, "median": 0.5, "p75": 0.75, "p95": 0.95,
             "p99": 0.99, "max": 1}


def check(out, norms, above=None):
    finite = norms[np.isfinite(norms)]
    assert out["vectors"] == len(norms)
    assert out["nonfinite"] == len(norms) - len(finite)
    assert out["finite"] == len(finite)
    assert out["zero"] == int(np.sum(finite == 0))
    for name, q in QUANTILES.items():
        assert out["quantiles"][name] == pytest.approx(np.quantile(finite, q), rel=1e-12, abs=1e-300)
    assert out["mean"] == pytest.approx(finite.mean(), rel=1e-12)
    assert sum(out["histogram"]["counts"]) == len(finite)
    if above is not None:
        assert out["above"]["count"] == int(np.sum(finite > above))


@pytest.mark.parametrize("p", ["1", "2", "3", "inf"])
@pytest.mark.parametrize("axis", [0, 1])
def test_npy(tmp_path, p, axis):
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((300, 17)) * 10.0 ** rng.uniform(-2, 2, size=(300, 1))).astype(np.float32)
    w[4] = 0
    np.save(tmp_path / "w.npy", w)
    out = run_json("stats", tmp_path / "w.npy", "-p", p, "--axis", axis, "--max-norm", "1")
    check(out, np.linalg.norm(w.astype(np.float64), ord=float(p), axis=axis), above=1.0)


def test_fortran_order_and_nonfinite(tmp_path):
    w = np.asfortranarray(np.random.default_rng(2).standard_normal((50, 6)))
    w[3, 2] = np.nan
    w[7, 0] = -np.inf
    np.save(tmp_path / "w.npy", w)
    norms = np.linalg.norm(w, axis=1)
    norms[~np.all(np.isfinite(w), axis=1)] = np.nan
    check(run_json("stats", tmp_path / "w.npy"), norms)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_safetensors_and_bfloat16_npy(tmp_path, dtype):
    rng = np.random.default_rng(3)
    t = random_table(rng, 40, 8, dtype)
    write_safetensors(tmp_path / "m.safetensors", [("x", "F32", (1,), b"\0\0\0\0"),
                                                   ("t", ST_DTYPE[dtype], t.shape, t.tobytes())])
    norms = np.linalg.norm(from_storage(t, dtype), axis=1)
    check(run_json("stats", tmp_path / "m.safetensors", "--tensor", "t"), norms)
    if dtype == "bfloat16":
        save_npy_raw(tmp_path / "b.npy", "<V2", t.shape, t.tobytes())
        check(run_json("stats", tmp_path / "b.npy", "--npy-bfloat16"), norms)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize("axis", [0, 1])
def test_npz(tmp_path, fmt, axis):
    rng = np.random.default_rng(4)
    m = sp.random(70, 40, density=0.05, format="coo", random_state=rng)
    if fmt == "coo":  # a repeated coordinate counts as the sum
        m = sp.coo_matrix((np.r_[m.data, 1.0, 2.0], (np.r_[m.row, 0, 0], np.r_[m.col, 0, 0])), shape=m.shape)
    sp.save_npz(tmp_path / "m.npz", m.asformat(fmt))
    norms = np.linalg.norm(m.toarray(), axis=axis)  # toarray sums repeats
    check(run_json("stats", tmp_path / "m.npz", "--axis", axis), norms)


def test_mtx_symmetric(tmp_path):
    a = sp.random(20, 20, density=0.2, random_state=5)
    a = sp.coo_matrix(a + a.T)
    scipy.io.mmwrite(str(tmp_path / "a.mtx"), a, symmetry="symmetric")
    check(run_json("stats", tmp_path / "a.mtx", "--axis", "0"), np.linalg.norm(a.toarray(), axis=0))


def test_text_output_with_histogram(tmp_path):
    np.save(tmp_path / "w.npy", np.random.default_rng(6).standard_normal((1000, 8)))
    out = run("stats", tmp_path / "w.npy", "--max-norm", "3", "--bins", "7").stdout
    assert "median" in out and "above 3" in out and "histogram (7 bins)" in out
    assert len([line for line in out.splitlines() if line.startswith("  [")]) == 7
    out = run("stats", tmp_path / "w.npy", "--log", "--bins", "5").stdout
    assert "logarithmic" in out


def test_log_bins_count_zeros_apart(tmp_path):
    w = np.zeros((10, 3))
    w[5:] = np.logspace(-3, 3, 5)[:, None]
    np.save(tmp_path / "w.npy", w)
    out = run_json("stats", tmp_path / "w.npy", "--log", "--bins", "6")
    assert out["zero"] == 5 and sum(out["histogram"]["counts"]) == 5
    edges = out["histogram"]["edges"]
    assert edges[0] == pytest.approx(np.sqrt(3) * 1e-3) and edges[-1] == pytest.approx(np.sqrt(3) * 1e3)


def test_empty_table(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((0, 4), np.float32))
    out = run_json("stats", tmp_path / "w.npy")
    assert out["vectors"] == 0 and out["quantiles"]["median"] is None


@pytest.mark.parametrize("shape", [(2**62, 0), (0, 2**62)])
@pytest.mark.parametrize("axis", [0, 1])
def test_huge_shapes_without_data(tmp_path, shape, axis):
    # A header may declare 2^62 vectors of length 0 (or 0 of length 2^62)
    # over no data at all: counted, never allocated or looped over.
    save_npy_raw(tmp_path / "w.npy", "<f4", shape, b"")
    out = run_json("stats", tmp_path / "w.npy", "--axis", axis)
    vectors = shape[1 - axis] if axis == 0 else shape[0]
    assert out["vectors"] == out["zero"] == vectors
    if vectors:
        assert out["quantiles"]["max"] == 0 and out["histogram"]["counts"][0] == vectors


def test_huge_sparse_shape(tmp_path):
    m = sp.coo_matrix((np.array([3.0]), (np.array([5]), np.array([7]))), shape=(2**62, 2**62))
    sp.save_npz(tmp_path / "m.npz", m)
    out = run_json("stats", tmp_path / "m.npz")
    assert out["vectors"] == 2**62 and out["zero"] == 2**62 - 1
    assert out["quantiles"]["max"] == 3 and out["quantiles"]["p99"] == 0
