"""The `sparsenorm` command of a pip installation: the package carries the
command-line tool (tools/, docs/CLI.md) in its _bin folder, and this entry
point runs it with the arguments it was given."""

import os
import sys
from pathlib import Path


def main():
    tool = Path(__file__).resolve().with_name("_bin") / "sparsenorm"
    if not tool.is_file():
        sys.exit(f"sparsenorm: {tool} is missing: this copy of the package was not installed "
                 "with pip (in a build tree the tool is build/tools/sparsenorm).")
    if not os.access(tool, os.X_OK):  # an archive that lost the executable bit
        tool.chmod(tool.stat().st_mode | 0o111)
    os.execv(tool, [str(tool), *sys.argv[1:]])


if __name__ == "__main__":
    main()
