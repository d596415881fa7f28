#!/usr/bin/python3
"""Writes the seed inputs of the parsers' fuzz targets into corpus/<parser>/
(seed-*). Run once; the files are committed. Inputs that once crashed a
target are kept beside them as regression-* files (see tests/fuzz/run)."""

import io
import json
import os
import struct
import zipfile

import numpy as np
import scipy.io
import scipy.sparse as sp

HERE = os.path.dirname(os.path.abspath(__file__))


def put(parser, name, data):
    d = os.path.join(HERE, "corpus", parser)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def npy_bytes(array):
    b = io.BytesIO()
    np.save(b, array)
    return b.getvalue()


def raw_npy(descr, shape, payload, fortran=False, version=1):
    header = "{'descr': %r, 'fortran_order': %s, 'shape': %r, }" % (descr, fortran, tuple(shape))
    pre = 10 if version == 1 else 12
    header += " " * ((64 - (pre + len(header) + 1) % 64) % 64) + "\n"
    length = struct.pack("<H", len(header)) if version == 1 else struct.pack("<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header.encode() + payload


def main():
    rng = np.random.default_rng(0)
    # .npy
    put("npy", "f4-2d", npy_bytes(rng.standard_normal((3, 4)).astype(np.float32)))
    put("npy", "f8-fortran", npy_bytes(np.asfortranarray(rng.standard_normal((2, 3)))))
    put("npy", "f2-1d", npy_bytes(np.arange(5, dtype=np.float16)))
    put("npy", "i8-empty", npy_bytes(np.zeros((0, 3), np.int64)))
    put("npy", "s3-0d", npy_bytes(np.array(b"csr")))
    put("npy", "u3-0d", npy_bytes(np.array("coo")))
    put("npy", "bfloat16", raw_npy("bfloat16", (2, 2), b"\x80\x3f" * 4))
    put("npy", "v2", raw_npy("<V2", (2,), b"\x80\x3f" * 2))
    put("npy", "version2", raw_npy("<f4", (1, 1), b"\0\0\x80\x3f", version=2))
    put("npy", "bigendian", npy_bytes(np.ones(2, np.dtype(">f4"))))
    # safetensors
    def st(entries, data, metadata=None):
        h = dict(entries)
        if metadata:
            h["__metadata__"] = metadata
        hb = json.dumps(h).encode()
        hb += b" " * ((8 - len(hb) % 8) % 8)
        return struct.pack("<Q", len(hb)) + hb + data
    w = rng.standard_normal((2, 3)).astype(np.float32).tobytes()
    put("safetensors", "one", st({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}, w))
    put("safetensors", "several", st({
        "a": {"dtype": "BF16", "shape": [2, 2], "data_offsets": [0, 8]},
        "b": {"dtype": "I64", "shape": [1], "data_offsets": [8, 16]},
        "c": {"dtype": "F16", "shape": [0, 4], "data_offsets": [16, 16]},
        "d": {"dtype": "F8_E4M3", "shape": [3], "data_offsets": [16, 19]}}, b"\1" * 19, {"format": "pt"}))
    put("safetensors", "empty", st({}, b""))
    # .npz
    m = sp.random(6, 5, density=0.4, random_state=1, dtype=np.float32)
    for fmt in ("csr", "csc", "coo"):
        for compressed in (True, False):
            b = io.BytesIO()
            sp.save_npz(b, m.asformat(fmt), compressed=compressed)
            put("npz", f"{fmt}-{'deflated' if compressed else 'stored'}", b.getvalue())
    b = io.BytesIO()
    sp.save_npz(b, sp.csr_matrix((0, 3)))
    put("npz", "empty", b.getvalue())
    # Member form (see tools/fuzz/fuzz_npz.cc): "M", CSR (0) or COO (1), the
    # members separated by "@@"; the target zips them itself.
    c = m.tocsr()
    put("npz", "members-csr", b"M\0" + b"@@".join(npy_bytes(a) for a in (
        np.array(b"csr"), np.array(c.shape), c.data, c.indices, c.indptr)))
    o = m.tocoo()
    put("npz", "members-coo", b"M\1" + b"@@".join(npy_bytes(a) for a in (
        np.array(b"coo"), np.array(o.shape), o.data.astype(np.float64), o.row.astype(np.int64), o.col)))
    # .mtx
    for symmetry, field in (("general", "real"), ("symmetric", "integer"), ("general", "pattern"),
                            ("skew-symmetric", "real")):
        a = np.tril(rng.integers(-3, 4, size=(4, 4)).astype(float), -1 if symmetry == "skew-symmetric" else 0)
        if symmetry == "symmetric":
            a = a + np.tril(a, -1).T
        if symmetry == "skew-symmetric":
            a = a - a.T
        if field == "pattern":
            a = (a != 0).astype(float)
        b = io.BytesIO()
        scipy.io.mmwrite(b, sp.coo_matrix(a), field=field, symmetry=symmetry)
        put("mtx", f"{field}-{symmetry}", b.getvalue())
    put("mtx", "nan-inf", b"%%MatrixMarket matrix coordinate real general\n% c\n2 2 3\n1 1 nan\n2 2 -inf\n1 2 1e-320\n")
    # Inputs just past the limits the parsers enforce, to start the fuzzers
    # near the checks.
    put("npy", "bad-header-length", raw_npy("<f4", (1,), b"\0" * 4, version=2)[:8] + struct.pack("<I", 70000))
    put("npy", "bad-overflow", raw_npy("<f8", (2**32, 2**32), b""))
    put("safetensors", "bad-duplicate", struct.pack("<Q", 44) + b'{"w": {"dtype": "F32"}, "w": {"dtype": "F32"}}'[:44])
    put("safetensors", "bad-deep", struct.pack("<Q", 22) + b'{"w": {"shape": [[[]]]}')
    put("safetensors", "bad-hole", st({"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                                       "b": {"dtype": "U8", "shape": [1], "data_offsets": [2, 3]}}, b"abc"))
    bomb = bytearray()
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data.npy", npy_bytes(np.zeros(100)))
    bomb = bytearray(b.getvalue())
    for sig, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        i = bomb.find(sig)
        bomb[i + at:i + at + 4] = struct.pack("<I", 0xFFFFFFF0)
    put("npz", "bad-bomb", bytes(bomb))
    put("mtx", "bad-declared", b"%%MatrixMarket matrix coordinate real general\n3 3 999999999\n1 1 1\n")
    # index lists
    put("indices", "text", b"0\n5\n  7 \n\n# comment\n999\n")
    put("indices", "npy-i4", npy_bytes(np.array([1, 2, 3], np.int32)))
    put("indices", "npy-u8", npy_bytes(np.array([4, 5], np.uint64)))


if __name__ == "__main__":
    main()
