"""sparsenorm rows: results against the library (bit for bit) and against the
rule in float64, read back with NumPy or a by-hand safetensors reader."""

import os

import numpy as np
import pytest

from conftest import (DTYPES, ST_DTYPE, from_storage, library, library_rows, load_table_npy,
                      oracle_rows, random_table, read_safetensors, run, run_json, save_npy_raw,
                      save_table_npy, snapshot, to_storage, ulps, write_safetensors)

# Within one ulp of the storage type of the float64 rule for 16-bit types
# (one rounding); a few for float32/float64, whose sums run in another order.
TOLERANCE = {"float32": 8, "float64": 8, "float16": 1, "bfloat16": 1}


def check(result, base, dtype, idx, mode, target, p, eps):
    exact = oracle_rows(from_storage(base, dtype), idx, mode, target, p, eps)
    got = from_storage(result, dtype)
    assert ulps(got, exact, dtype) <= TOLERANCE[dtype]
    untouched = sorted(set(range(base.shape[0])) - set(int(i) for i in idx))
    assert np.array_equal(np.asarray(result)[untouched], np.asarray(base)[untouched])
    lib = library_rows(base, dtype, idx, mode, target, p, eps)
    if lib is not None:
        assert np.array_equal(np.asarray(result).view(np.uint8), lib.view(np.uint8)), "differs from the library"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", ["1", "2", "3", "inf"])
@pytest.mark.parametrize("mode", ["max", "constant"])
def test_npy_with_text_indices(tmp_path, dtype, p, mode):
    rng = np.random.default_rng(hash((dtype, p, mode)) % 2**32)
    base = random_table(rng, 200, 33, dtype)
    idx = rng.integers(0, 200, size=150)
    f = tmp_path / "table.npy"
    save_table_npy(f, base, dtype)
    (tmp_path / "idx.txt").write_text("".join(f"{i}\n" for i in idx))
    pf = float(p)
    target = float(np.median(np.linalg.norm(from_storage(base, dtype), ord=pf, axis=1)))
    flag = "--max-norm" if mode == "max" else "--constant-norm"
    out = run_json("rows", f, "--indices", tmp_path / "idx.txt", flag, repr(target), "-p", p)
    assert out["indices_seen"] == 150 and out["distinct_rows"] == len(set(idx.tolist()))
    assert out["dtype"] == dtype and out["rows"] == 200 and out["cols"] == 33
    assert 0 < out["rows_scaled"] <= out["distinct_rows"]
    check(load_table_npy(f, dtype), base, dtype, idx, mode, target, pf, 1e-12)
    assert sorted(os.listdir(tmp_path)) == ["idx.txt", "table.npy"]  # no temporary left


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32, np.uint16, np.int8])
def test_npy_indices_and_output_file(tmp_path, index_dtype):
    rng = np.random.default_rng(3)
    base = random_table(rng, 120, 16, "float32")
    idx = rng.integers(0, 120, size=40).astype(index_dtype)
    np.save(tmp_path / "t.npy", base)
    np.save(tmp_path / "i.npy", idx)
    before = snapshot(tmp_path)
    out = run_json("rows", tmp_path / "t.npy", "--indices", tmp_path / "i.npy", "--max-norm", "1",
                   "--eps", "1e-7", "-o", tmp_path / "new.npy")
    assert out["output"].endswith("new.npy")
    assert snapshot(tmp_path)["t.npy"] == before["t.npy"]  # the input is untouched
    check(np.load(tmp_path / "new.npy"), base, "float32", idx, "max", 1.0, 2.0, 1e-7)


def test_all_rows_float64_and_thread_counts(tmp_path):
    rng = np.random.default_rng(4)
    base = random_table(rng, 1000, 65, "float64")
    np.save(tmp_path / "t.npy", base)
    results = []
    for threads in ["1", "2", "3"]:
        run("--threads", threads, "rows", tmp_path / "t.npy", "--all", "--constant-norm", "2",
            "-o", tmp_path / f"o{threads}.npy")
        results.append(np.load(tmp_path / f"o{threads}.npy"))
    assert all(np.array_equal(results[0], r) for r in results)
    check(results[0], base, "float64", range(1000), "constant", 2.0, 2.0, 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_safetensors_one_tensor_among_several(tmp_path, dtype):
    rng = np.random.default_rng(5)
    emb = random_table(rng, 64, 24, dtype)
    other = rng.standard_normal((7, 3)).astype(np.float32)
    ints = np.arange(10, dtype=np.int64)
    f = tmp_path / "model.safetensors"
    tensors = [("emb.weight", ST_DTYPE[dtype], emb.shape, emb.tobytes()),
               ("head", "F32", other.shape, other.tobytes()),
               ("steps", "I64", ints.shape, ints.tobytes()),
               ("empty", "F32", (0, 5), b"")]
    write_safetensors(f, tensors, metadata={"format": "pt", "note": "written by hand"})
    idx = [0, 5, 5, 63, 17]
    run("rows", f, "--tensor", "emb.weight", "--indices", _text(tmp_path, idx), "--max-norm", "0.5")
    got, metadata = read_safetensors(f)
    assert metadata == {"format": "pt", "note": "written by hand"}
    assert got["head"][2] == other.tobytes() and got["steps"][2] == ints.tobytes()
    code, shape, raw = got["emb.weight"]
    assert code == ST_DTYPE[dtype] and shape == emb.shape
    result = np.frombuffer(raw, dtype=emb.dtype).reshape(emb.shape)
    check(result, emb, dtype, idx, "max", 0.5, 2.0, 1e-12)


def test_safetensors_single_tensor_needs_no_name_and_unaligned_data(tmp_path):
    # No header padding: the data section starts at an odd offset, so the
    # table is unaligned in the file. The default mode copies it and works.
    rng = np.random.default_rng(6)
    emb = random_table(rng, 10, 3, "float32")
    f = tmp_path / "m.safetensors"
    write_safetensors(f, [("w", "F32", emb.shape, emb.tobytes())], pad_to=0)
    run("rows", f, "--all", "--constant-norm", "1")
    result = np.frombuffer(read_safetensors(f)[0]["w"][2], dtype=np.float32).reshape(10, 3)
    check(result, emb, "float32", range(10), "constant", 1.0, 2.0, 1e-12)


@pytest.mark.parametrize("descr", ["bfloat16", "<V2", "|V2"])
def test_bfloat16_npy(tmp_path, descr):
    rng = np.random.default_rng(7)
    base = random_table(rng, 50, 16, "bfloat16")
    f = tmp_path / "t.npy"
    save_npy_raw(f, descr, base.shape, base.tobytes())
    flags = [] if descr == "bfloat16" else ["--npy-bfloat16"]
    run("rows", f, "--all", "--max-norm", "1", *flags)
    with open(f, "rb") as fh:
        raw = fh.read()
    assert descr.encode() in raw[:128]  # the header is kept as it was
    result = np.frombuffer(raw[128:], dtype=np.uint16).reshape(base.shape)
    check(result, base, "bfloat16", range(50), "max", 1.0, 2.0, 1e-12)


def test_in_place_npy_and_safetensors(tmp_path):
    rng = np.random.default_rng(8)
    base = random_table(rng, 80, 20, "float16")
    np.save(tmp_path / "t.npy", base)
    inode = os.stat(tmp_path / "t.npy").st_ino
    out = run_json("rows", tmp_path / "t.npy", "--all", "--max-norm", "1", "--in-place")
    assert out["in_place"] is True
    assert os.stat(tmp_path / "t.npy").st_ino == inode  # the same file, not a new one
    check(np.load(tmp_path / "t.npy"), base, "float16", range(80), "max", 1.0, 2.0, 1e-12)

    f = tmp_path / "m.safetensors"
    write_safetensors(f, [("a", "F16", base.shape, base.tobytes()), ("b", "F16", base.shape, base.tobytes())])
    inode = os.stat(f).st_ino
    run("rows", f, "--tensor", "b", "--indices", _text(tmp_path, [1, 2]), "--max-norm", "1", "--in-place")
    assert os.stat(f).st_ino == inode
    got, _ = read_safetensors(f)
    assert got["a"][2] == base.tobytes()
    check(np.frombuffer(got["b"][2], np.float16).reshape(base.shape), base, "float16", [1, 2], "max", 1.0, 2.0, 1e-12)


def test_nonfinite_rows_are_counted_and_left(tmp_path):
    base = np.ones((4, 3), dtype=np.float32) * 5
    base[1, 2] = np.nan
    base[2, 0] = np.inf
    np.save(tmp_path / "t.npy", base)
    out = run_json("rows", tmp_path / "t.npy", "--all", "--max-norm", "1")
    assert out["nonfinite_rows"] == 2 and out["rows_scaled"] == 2
    r = np.load(tmp_path / "t.npy")
    assert np.array_equal(r[1:3], base[1:3], equal_nan=True)
    assert np.allclose(np.linalg.norm(r[[0, 3]], axis=1), 1)


def test_text_output_and_empty_index_list(tmp_path):
    np.save(tmp_path / "t.npy", np.ones((3, 2), np.float32))
    (tmp_path / "i.txt").write_text("\n# nothing\n\n")
    p = run("rows", tmp_path / "t.npy", "--indices", tmp_path / "i.txt", "--max-norm", "1")
    assert "rows scaled  0" in p.stdout and "replaced atomically" in p.stdout
    assert np.array_equal(np.load(tmp_path / "t.npy"), np.ones((3, 2), np.float32))


def test_symlink_target_is_replaced_and_link_kept(tmp_path):
    base = random_table(np.random.default_rng(9), 5, 4, "float32")
    (tmp_path / "real").mkdir()
    np.save(tmp_path / "real" / "t.npy", base)
    os.chmod(tmp_path / "real" / "t.npy", 0o640)
    os.symlink(tmp_path / "real" / "t.npy", tmp_path / "link.npy")
    run("rows", tmp_path / "link.npy", "--all", "--constant-norm", "1")
    assert os.path.islink(tmp_path / "link.npy")
    assert oct(os.stat(tmp_path / "real" / "t.npy").st_mode & 0o777) == oct(0o640)  # mode kept
    assert sorted(os.listdir(tmp_path / "real")) == ["t.npy"]
    check(np.load(tmp_path / "real" / "t.npy"), base, "float32", range(5), "constant", 1.0, 2.0, 1e-12)


def _text(tmp_path, idx):
    f = tmp_path / "idx.txt"
    f.write_text("\n".join(str(i) for i in idx))
    return f


def test_library_comparison_is_active_outside_sanitizer_builds():
    # Makes it visible when the bit-exact comparisons were skipped.
    if library() is None:
        pytest.skip("SPARSENORM_C_LIBRARY not set (sanitizer build): float64 oracle checks only")
