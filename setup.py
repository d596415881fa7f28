"""pip's way into the project's CMake build.

    python3 -m venv --system-site-packages v && v/bin/pip install --no-build-isolation .

installs the `sparsenorm` package (its pure-Python files and the compiled
module sparsenorm._core) and the `sparsenorm` command-line tool. Setuptools
drives CMake here rather than scikit-build: the build is the project's own
CMake build (one definition of flags, targets and dependencies), and what
pip needs from it is three steps, configure, build two targets and copy two
files, which a few lines below do with nothing to install beyond Debian's
python3-setuptools. See docs/PYTHON.md ("Installing with pip").

Environment:
  SPARSENORM_CMAKE_BUILD_DIR  an existing, configured build directory of this
                              source tree to build in and reuse (CI does, so
                              that pip compiles nothing twice); by default a
                              fresh one under build/pip/
  SPARSENORM_CMAKE_ARGS       extra arguments for the configure step, e.g.
                              "-DSPARSENORM_CUDA=OFF"
  CMAKE_BUILD_PARALLEL_LEVEL  compile jobs (CMake's own variable)
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


def version():
    """The library's version, from its one place (include/sparsenorm/version.h)."""
    text = (ROOT / "include" / "sparsenorm" / "version.h").read_text()
    return re.search(r'#define SPARSENORM_VERSION_STRING "([^"]+)"', text).group(1)


class CMakeExtension(Extension):
    """sparsenorm._core, built by CMake (python/CMakeLists.txt)."""

    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        given = os.environ.get("SPARSENORM_CMAKE_BUILD_DIR")
        build_dir = Path(given).resolve() if given else ROOT / "build" / "pip"
        if not given or not (build_dir / "CMakeCache.txt").exists():
            configure = [
                "cmake", "-S", str(ROOT), "-B", str(build_dir),
                "-DCMAKE_BUILD_TYPE=Release",
                f"-DPython3_EXECUTABLE={sys.executable}",
                "-DSPARSENORM_PYTHON=ON",
                "-DSPARSENORM_BUILD_TOOLS=ON",
                # What a pip install does not ship.
                "-DSPARSENORM_BUILD_TESTS=OFF",
                "-DSPARSENORM_BUILD_BENCHMARKS=OFF",
                "-DSPARSENORM_BUILD_EXAMPLES=OFF",
                "-DSPARSENORM_INSTALL=OFF",
            ]
            configure += shlex.split(os.environ.get("SPARSENORM_CMAKE_ARGS", ""))
            subprocess.run(configure, check=True)
        subprocess.run(["cmake", "--build", str(build_dir), "--parallel",
                        "--target", "sparsenorm_python", "sparsenorm_cli"], check=True)

        # The compiled module goes where setuptools expects the extension; it
        # holds the library's code itself, so it needs no search path.
        built = sorted((build_dir / "python" / "sparsenorm").glob("_core*.so"))
        if len(built) != 1:
            raise RuntimeError(f"expected one compiled module in {build_dir}/python/sparsenorm, "
                               f"found {[p.name for p in built]}")
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built[0], target)
        # The command-line tool travels inside the package; the `sparsenorm`
        # console script (sparsenorm/_tool.py) runs it.
        tool_dir = target.parent / "_bin"
        tool_dir.mkdir(exist_ok=True)
        shutil.copy2(build_dir / "tools" / "sparsenorm", tool_dir / "sparsenorm")


setup(
    name="sparsenorm",
    version=version(),
    description="Renormalize rows or columns of weight matrices, dense or sparse; "
                "sparse optimizers with the norm constraint fused in",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="see the repository",
    python_requires=">=3.8",
    install_requires=["numpy"],
    package_dir={"": "python"},
    packages=["sparsenorm"],
    package_data={"sparsenorm": ["py.typed", "*.pyi"]},
    ext_modules=[CMakeExtension("sparsenorm._core")],
    cmdclass={"build_ext": CMakeBuild},
    entry_points={"console_scripts": ["sparsenorm = sparsenorm._tool:main"]},
    # setuptools' own intermediate files (build/, *.egg-info) go under the
    # project's ignored build/ folder, not beside the sources.
    options={"build": {"build_base": str(ROOT / "build" / "setuptools")},
             "egg_info": {"egg_base": str(ROOT / "build" / "setuptools")}},
    zip_safe=False,
)
