"""sparsenorm bench: runs, reports the figures it claims, in both forms."""

from conftest import fail, run, run_json


def test_quick_rows_benchmark_json():
    out = run_json("bench", "--case", "rows", "--rows", "20000", "--cols", "64", "--indices", "5000",
                   "--reps", "3", "--copy-mib", "16")
    (case,) = out["cases"]
    assert case["case"].startswith("rows float32 20000x64")
    for key in ("ms", "bytes_per_s", "copy_bytes_per_s", "fraction_of_copy"):
        assert case[key] > 0
    assert abs(case["fraction_of_copy"] - case["bytes_per_s"] / case["copy_bytes_per_s"]) < 1
    # Every distinct row is read and written, plus the 8-byte indices.
    assert case["bytes_moved"] > 5000 * 0.8 * 2 * 64 * 4


def test_text_summary_line_and_dtypes():
    for dtype in ("float64", "float16", "bfloat16"):
        p = run("bench", "--case", "rows", "--rows", "5000", "--cols", "7", "--indices", "3000", "--reps", "2",
                "--copy-mib", "8", "--dtype", dtype, "--hot", "100")
        assert p.stdout.splitlines()[-1].startswith("rows-cli: gbytes_per_s=")
        assert f"rows {dtype} 5000x7, 3000 idx over 100 rows" in p.stdout


def test_matrix_cases():
    out = run_json("bench", "--case", "matrix", "--matrix-rows", "512", "--matrix-cols", "256",
                   "--matrix-nnz", "8", "--reps", "2", "--copy-mib", "8")
    dense, csr = out["cases"]
    assert dense["key"] == "matrix-dense" and dense["case"].startswith("matrix float32 512x256 dense")
    assert dense["bytes_moved"] == 2 * 512 * 256 * 4  # every value read and written once
    assert csr["key"] == "matrix-csr" and csr["case"].startswith("matrix float32 512x512 csr, 8 per row")
    for case in (dense, csr):
        assert case["ms"] > 0 and case["fraction_of_copy"] > 0


def test_default_runs_every_case():
    p = run("bench", "--rows", "4000", "--cols", "16", "--indices", "1000", "--reps", "1",
            "--copy-mib", "8", "--matrix-rows", "256", "--matrix-cols", "64", "--matrix-nnz", "4")
    summary = [line.split(":")[0] for line in p.stdout.splitlines()[-3:]]
    assert summary == ["rows-cli", "matrix-dense-cli", "matrix-csr-cli"]


def test_version_names_no_build_switch():
    line = run("--version").stdout.strip()
    assert line.startswith("sparsenorm ") and "SIMD: " in line and "threads: " in line
    assert "matrix" not in line


def test_bad_arguments():
    assert "--dtype" in fail("bench", "--dtype", "int8", rc=2)
    assert "positive" in fail("bench", "--reps", "0", rc=2)
    assert "--case must be rows, matrix or all, not 'auto'" in fail("bench", "--case", "auto", rc=2)
