"""Every CPU kernel that walks rows of a table prefetches them.

Usage: check_prefetch.py OBJDUMP LIBRARY

The kernels prefetch the rows they will touch next (common/prefetch.h);
without it each cold row costs a full memory latency. The prefetch is not
visible in any result, only in the time, and GCC once deleted it from most
kernels without a word (a loop of nothing but prefetches counts as having
no effect). This check disassembles the built library and fails if any
instance of those kernels, on any SIMD target, has no prefetch instruction,
or if it finds none of a kernel's instances (a renamed kernel would
otherwise pass unchecked).
"""

import re
import subprocess
import sys

# The kernels of src/cpu/ that prefetch rows ahead of use.
KERNELS = [
    "MarkedRowsInPlaceT",
    "OwnedRowsInPlaceT",
    "NormsOfRowsT",
    "ScaleRowsT",
    "UpdateGroupsT",
]

PREFETCH = re.compile(r"\s(prefetch\w*|prfm)\s")
FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")


def main():
    objdump, library = sys.argv[1], sys.argv[2]
    text = subprocess.run([objdump, "-d", "-C", "--no-show-raw-insn", library],
                          check=True, capture_output=True, text=True).stdout
    counts = {}  # function -> prefetch instructions
    current = None
    for line in text.splitlines():
        m = FUNCTION.match(line)
        if m:
            name = m.group(1)
            # A [clone .cold] holds only a function's rarely taken paths.
            wanted = any(k + "<" in name for k in KERNELS) and ".cold]" not in name
            current = name if wanted else None
            if current is not None:
                counts.setdefault(current, 0)
        elif current is not None and PREFETCH.search(line):
            counts[current] += 1
    failures = []
    for kernel in KERNELS:
        instances = {f: n for f, n in counts.items() if kernel + "<" in f}
        if not instances:
            failures.append(f"{kernel}: no instance found in {library}")
        failures += [f"{f}: no prefetch instruction" for f, n in sorted(instances.items()) if n == 0]
        print(f"{kernel}: {len(instances)} instances, "
              f"{sum(1 for n in instances.values() if n > 0)} with prefetches")
    for f in failures:
        print("FAIL", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
