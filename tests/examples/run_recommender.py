"""Runs examples/maxnorm_recommender.py on its tiny setting and checks that
it finishes, prints its summary, and writes a readable picture:

    run_recommender.py SOURCE_DIR OUTPUT_PNG
"""

import importlib.util
import struct
import subprocess
import sys
import tempfile
from pathlib import Path


def main():
    source, png = Path(sys.argv[1]), Path(sys.argv[2])
    png.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, str(source / "examples" / "maxnorm_recommender.py"),
                          "--tiny", "--out", str(png)], check=True, capture_output=True,
                         text=True).stdout
    print(out)
    rmse = {}
    for setting in ("none", "l2", "max-norm", "torch max_norm"):
        lines = [l for l in out.splitlines() if l.startswith(setting + " ")]
        assert lines, f"no summary line for {setting}"
        rmse[setting] = float(lines[-1].split()[-5])
    # The fused step (Adagrad, then each touched row kept inside the ball)
    # and torch's forward-pass max_norm constrain the same rows with the same
    # rule: their models may differ only by float rounding.
    assert abs(rmse["max-norm"] - rmse["torch max_norm"]) < 2e-3, rmse
    assert "seconds per epoch" in out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 300, (width, height)
    print(f"{png}: {width} x {height} PNG, {len(data)} bytes")
    check_movielens_formats(source)


def check_movielens_formats(source):
    """The reader takes MovieLens' three formats to the same arrays (the
    project has no network access to fetch the real files)."""
    spec = importlib.util.spec_from_file_location(
        "maxnorm_recommender", source / "examples" / "maxnorm_recommender.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    ratings = [("1", "10", "4"), ("2", "10", "3.5"), ("1", "7", "5"), ("3", "7", "1")]
    texts = {
        "u.data": "".join(f"{u}\t{i}\t{r}\t881250949\n" for u, i, r in ratings),
        "ratings.dat": "".join(f"{u}::{i}::{r}::978300760\n" for u, i, r in ratings),
        "ratings.csv": "userId,movieId,rating,timestamp\n" +
                       "".join(f"{u},{i},{r},964982703\n" for u, i, r in ratings),
    }
    with tempfile.TemporaryDirectory() as d:
        parsed = {}
        for name, text in texts.items():
            path = Path(d) / name
            path.write_text(text)
            parsed[name] = [a.tolist() for a in example.read_movielens(path)]
        bad = Path(d) / "bad.dat"
        bad.write_text("1::x\n")
        try:
            example.read_movielens(bad)
            raise AssertionError("a malformed file was read")
        except SystemExit as e:
            assert "not a MovieLens ratings file" in str(e), e
    # Ids renumbered from 0 (in the order of their text), ratings as given.
    expected = [[0, 1, 0, 2], [0, 0, 1, 1], [4.0, 3.5, 5.0, 1.0]]
    for name, arrays in parsed.items():
        assert arrays == expected, (name, arrays)
    print("MovieLens formats: u.data, ratings.dat and ratings.csv read alike")


if __name__ == "__main__":
    main()
