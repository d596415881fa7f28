"""The machine's copy bandwidth, measured the same way by every comparison
script in bench/ (and by `sparsenorm bench`, tools/cli/bench_command.cc):
bytes read plus bytes written by the faster of torch's multi-threaded
copy_ and glibc's memcpy run on every thread, over 512 MiB. Large memcpy
uses non-temporal stores, so the bytes it counts are the bytes that cross
the memory bus, as for an in-place update.

Also the cache flush the scripts run between the copy and the measured
call, so that the call does not pay for writing back the copy's dirty
lines."""

import concurrent.futures
import ctypes
import time

import numpy as np
import torch

DEFINITION = "copy = faster of torch copy_ and memcpy on every thread, 512 MiB, bytes read + written"


class Copy:
    def __init__(self, threads, nbytes=512 << 20):
        self.src = np.ones(nbytes, dtype=np.uint8)
        self.dst = np.zeros(nbytes, dtype=np.uint8)
        self.src_t, self.dst_t = torch.from_numpy(self.src), torch.from_numpy(self.dst)
        self.pool = concurrent.futures.ThreadPoolExecutor(threads)
        step = nbytes // threads
        self.parts = [(self.dst.ctypes.data + k * step, self.src.ctypes.data + k * step,
                       step if k < threads - 1 else nbytes - k * step) for k in range(threads)]

    def rate(self):
        """Bytes per second, read plus written, of one copy of each kind: the faster."""
        n = 2 * self.src.nbytes
        t = time.perf_counter()
        self.dst_t.copy_(self.src_t)
        torch_rate = n / (time.perf_counter() - t)
        t = time.perf_counter()
        # ctypes releases the GIL for the duration of each memmove.
        list(self.pool.map(lambda part: ctypes.memmove(*part), self.parts))
        memcpy_rate = n / (time.perf_counter() - t)
        return max(torch_rate, memcpy_rate)


class Flush:
    """64 MiB read from start to end: twice the last-level cache of the
    machines we use, so it replaces dirty lines with clean ones."""

    def __init__(self):
        self.buffer = np.ones(16 << 20, dtype=np.float32)

    def __call__(self):
        return float(self.buffer.sum())
