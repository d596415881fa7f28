"""Shared helpers of the end-to-end tests of the sparsenorm command-line tool.

ctest runs these under Debian's /usr/bin/python3 with
  SPARSENORM_CLI          the tool (build/tools/sparsenorm)
  SPARSENORM_C_LIBRARY    libsparsenorm_c.so, for bit-exact comparisons with the
                          library (absent in sanitizer builds: an instrumented
                          library cannot be loaded into Python; those checks skip)
Every fixture file is generated here, with NumPy/SciPy, or by hand from the
format's specification (safetensors: the package is not in Debian)."""

import hashlib
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))

CLI = os.environ.get("SPARSENORM_CLI")
if CLI is None:
    pytest.skip("SPARSENORM_CLI is not set (run through ctest)", allow_module_level=True)


def run(*args, rc=0, env=None, timeout=300):
    """Runs the tool; checks the exit status; returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.pop("SPARSENORM_PROGRESS_DELAY_MS", None)
    if env:
        full_env.update(env)
    p = subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, env=full_env,
                       timeout=timeout)
    if rc is not None:
        assert p.returncode == rc, (
            f"exit {p.returncode}, expected {rc}\nargs: {args}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def run_json(*args):
    return json.loads(run("--json", *args).stdout)


def fail(*args, rc=1):
    """Runs the tool expecting failure: exactly one line on stderr, in the
    tool's format, and nothing on stdout. Returns that line."""
    p = run(*args, rc=rc)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {p.stderr!r}"
    assert lines[0].startswith("sparsenorm: error: "), lines[0]
    assert p.stdout == "", p.stdout
    return lines[0]


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def snapshot(directory):
    """{name: sha256} of every file in a directory (temporary files included)."""
    return {n: sha(os.path.join(directory, n)) for n in sorted(os.listdir(directory))}


# ---------------------------------------------------------------------------
# dtypes

DTYPES = ["float32", "float64", "float16", "bfloat16"]
ST_DTYPE = {"float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16"}
TORCH = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
         "bfloat16": torch.bfloat16}


def to_storage(values, dtype):
    """float64 values -> a NumPy array holding the dtype's bits (bfloat16 as uint16)."""
    t = torch.from_numpy(np.asarray(values, dtype=np.float64)).to(TORCH[dtype])
    if dtype == "bfloat16":
        return t.view(torch.int16).numpy().view(np.uint16)
    return t.numpy()


def from_storage(array, dtype):
    """The dtype's bits -> float64 values."""
    if dtype == "bfloat16":
        return torch.from_numpy(np.array(array, copy=True).view(np.int16)).view(torch.bfloat16).double().numpy()
    return np.asarray(array, dtype=np.float64)


def random_table(rng, rows, cols, dtype):
    scale = 10.0 ** rng.uniform(-1, 1 if dtype != "float16" else 0.5, size=(rows, 1))
    return to_storage(rng.standard_normal((rows, cols)) * scale, dtype)


# ---------------------------------------------------------------------------
# .npy with descriptors NumPy cannot write (bfloat16)

def save_npy_raw(path, descr, shape, payload, fortran=False):
    """A version 1.0 .npy file with any descr, laid out as NumPy lays it out."""
    header = "{'descr': %r, 'fortran_order': %s, 'shape': %r, }" % (descr, fortran, tuple(shape))
    pad = (64 - (10 + len(header) + 1) % 64) % 64
    header = header + " " * pad + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(payload)


def save_table_npy(path, storage, dtype, bf16_descr="bfloat16"):
    if dtype == "bfloat16":
        save_npy_raw(path, bf16_descr, storage.shape, storage.tobytes())
    else:
        np.save(path, storage)


def load_table_npy(path, dtype):
    if dtype == "bfloat16":
        with open(path, "rb") as f:
            raw = f.read()
        hlen = struct.unpack("<H", raw[8:10])[0]
        header = eval(raw[10:10 + hlen].decode("latin1"))  # noqa: S307 (our own test file)
        return np.frombuffer(raw[10 + hlen:], dtype=np.uint16).reshape(header["shape"])
    return np.load(path)


# ---------------------------------------------------------------------------
# safetensors, written and read by hand from the format's description

def write_safetensors(path, tensors, metadata=None, pad_to=8):
    """tensors: list of (name, dtype code such as "F32", shape, raw bytes), in data order."""
    header = {}
    offset = 0
    for name, code, shape, raw in tensors:
        header[name] = {"dtype": code, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad_to:
        h += b" " * ((pad_to - len(h) % pad_to) % pad_to)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, raw in tensors:
            f.write(raw)


def read_safetensors(path):
    """{name: (dtype code, shape, raw bytes)} and the metadata, checking the layout."""
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    metadata = header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], tuple(e["shape"]), data[b:end])
    return out, metadata


# ---------------------------------------------------------------------------
# the library itself, for bit-exact comparisons

def library():
    path = os.environ.get("SPARSENORM_C_LIBRARY")
    if not path:
        return None
    from sparsenorm_ctypes import Library
    return Library(path)


def library_rows(storage, dtype, indices, mode, target, p, eps):
    """What the library's row operator makes of a copy of `storage`, or None
    when the library cannot be loaded here."""
    lib = library()
    if lib is None:
        return None
    out = np.ascontiguousarray(storage).copy()
    idx = np.ascontiguousarray(indices, dtype=np.int64)
    o = lib.options(mode=0 if mode == "max" else 1, target=target, p=p, eps=eps)
    lib.normalize_rows(out.ctypes.data, dtype, out.shape[0], out.shape[1], out.shape[1],
                       idx.ctypes.data, "int64", len(idx), o)
    return out


def oracle_rows(values, indices, mode, target, p, eps):
    """The row operator's rule in float64."""
    w = np.array(values, dtype=np.float64)
    for r in sorted(set(int(i) for i in indices)):
        row = w[r]
        if not np.all(np.isfinite(row)):
            continue
        n = np.linalg.norm(row, ord=p)
        if n == 0 or (mode == "max" and n <= target):
            continue
        w[r] = row * (target / (n + eps))
    return w


ULP_BITS = {"float32": 23, "float64": 52, "float16": 10, "bfloat16": 7}
MIN_EXP = {"float32": -126, "float64": -1022, "float16": -14, "bfloat16": -126}


def ulps(a, b, dtype):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m = np.maximum(np.abs(a), np.abs(b))
    m = np.where(m == 0, 1e-300, m)
    e = np.maximum(np.floor(np.log2(m)), MIN_EXP[dtype])
    return float(np.max(np.abs(a - b) / np.exp2(e - ULP_BITS[dtype]), initial=0))
