"""pip install of the package into a fresh virtual environment, as the README
tells Python users to do it, then checks of what a user gets:

    pip_install_check.py SOURCE_DIR BUILD_DIR WORK_DIR

The build reuses BUILD_DIR (SPARSENORM_CMAKE_BUILD_DIR, setup.py), so that
the package's code is compiled once for the whole test suite; a pip build
from scratch runs the same setup.py with a fresh directory. Checks: the
package imports from an unrelated directory without PYTHONPATH or
LD_LIBRARY_PATH and works on a NumPy array; the type information ships
(py.typed, the compiled module's stub); the `sparsenorm` command is on the
environment's PATH and runs; `pip uninstall` removes all of it.
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def run(cmd, **kwargs):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, text=True, **kwargs)


def main():
    source, build, work = (Path(a).resolve() for a in sys.argv[1:4])
    venv = work / "venv"
    shutil.rmtree(venv, ignore_errors=True)
    run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    python, pip_env = venv / "bin" / "python", dict(os.environ)
    for var in ("PYTHONPATH", "LD_LIBRARY_PATH"):
        pip_env.pop(var, None)
    pip_env["SPARSENORM_CMAKE_BUILD_DIR"] = str(build)
    pip_env["PIP_NO_INDEX"] = "1"  # everything comes from Debian's packages
    run([python, "-m", "pip", "install", "--no-build-isolation", "--no-deps", source],
        env=pip_env)

    clean_env = {k: v for k, v in pip_env.items() if k != "SPARSENORM_CMAKE_BUILD_DIR"}
    with tempfile.TemporaryDirectory() as elsewhere:
        check = (
            "import pathlib, numpy as np, sparsenorm\n"
            "pkg = pathlib.Path(sparsenorm.__file__).parent\n"
            f"assert str(pkg).startswith({str(venv)!r}), pkg\n"
            "t = np.array([[3.0, 4.0], [0.3, 0.4]], dtype=np.float32)\n"
            "s = sparsenorm.normalize_rows_(t, [0, 1])\n"
            "assert s.rows_scaled == 1 and abs(float(t[0, 0]) - 0.6) < 1e-6, (s, t)\n"
            "assert (pkg / 'py.typed').is_file() and (pkg / '_core.pyi').is_file()\n"
            "print('imported', sparsenorm.__version__, 'from', pkg)\n"
        )
        run([python, "-c", check], cwd=elsewhere, env=clean_env)
        tool = venv / "bin" / "sparsenorm"
        out = run([tool, "--version"], cwd=elsewhere, env=clean_env, capture_output=True).stdout
        print(out.strip())
        assert "sparsenorm" in out and "0." in out, out

    run([python, "-m", "pip", "uninstall", "--yes", "sparsenorm"], env=clean_env)
    gone = subprocess.run([str(python), "-c", "import sparsenorm"], cwd=work, env=clean_env,
                          capture_output=True, text=True)
    assert gone.returncode != 0, "sparsenorm still imports after pip uninstall"
    assert not (venv / "bin" / "sparsenorm").exists(), "the sparsenorm command outlived uninstall"
    leftovers = [p for p in (venv / "lib").rglob("sparsenorm*")]
    assert not leftovers, f"left behind by pip uninstall: {leftovers}"
    shutil.rmtree(venv)
    print("pip install, use and uninstall: ok")


if __name__ == "__main__":
    main()
