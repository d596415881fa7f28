"""Runs examples/maxnorm_recommender.py on its tiny setting and checks that
it finishes, prints its summary, and writes a readable picture:

    run_recommender.py SOURCE_DIR OUTPUT_PNG
"""

import struct
import subprocess
import sys
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


if __name__ == "__main__":
    main()
