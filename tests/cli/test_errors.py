"""Every way the tool refuses: exit status, exactly one line on stderr that
says what is wrong, nothing on stdout, and every file in the directory
byte-for-byte unchanged (no temporary left behind)."""

import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

from conftest import fail, save_npy_raw, snapshot, write_safetensors


def refuse(tmp_path, args, rc, *needles):
    before = snapshot(tmp_path)
    line = fail(*args, rc=rc)
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert snapshot(tmp_path) == before
    return line


@pytest.fixture
def table(tmp_path):
    np.save(tmp_path / "t.npy", np.arange(20, dtype=np.float32).reshape(5, 4))
    return tmp_path / "t.npy"


# ---------------------------------------------------------------------------
# command-line mistakes: status 2

@pytest.mark.parametrize("args,needle", [
    ((), "subcommand is required"),
    (("frobnicate",), "unknown command 'frobnicate'"),
    (("--threads", "2", "stat", "{t}"), "unknown command 'stat'"),
    (("rows", "{t}", "--all"), "--max-norm T or --constant-norm T"),
    (("rows", "{t}", "--max-norm", "1"), "--indices FILE or --all"),
    (("rows", "{t}", "--all", "--indices", "{t}", "--max-norm", "1"), "excludes"),
    (("rows", "{t}", "--all", "--max-norm", "1", "--constant-norm", "1"), "excludes"),
    (("rows", "{t}", "--all", "--max-norm", "1", "-o", "x.npy", "--in-place"), "excludes"),
    (("rows", "{t}", "--all", "--max-norm", "1", "-p", "0"), "-p must be a positive number or inf"),
    (("rows", "{t}", "--all", "--max-norm", "1", "-p", "two"), "'two'"),
    (("rows", "{t}", "--all", "--max-norm", "-1"), "-1"),
    (("rows", "{t}", "--all", "--max-norm", "nan"), "nan"),
    (("rows", "{t}", "--all", "--max-norm", "1", "--eps", "-1e-3"), "eps"),
    (("rows", "{t}", "--all", "--max-norm", "abc"), "abc"),
    (("rows", "{t}", "--all", "--max-norm", "1", "--tensor", "w"), "--tensor applies to .safetensors"),
    (("rows", "{t}", "--all", "--max-norm", "1", "-o", "{d}/out.safetensors"), "keeps the input's format"),
    (("--threads", "-2", "rows", "{t}", "--all", "--max-norm", "1"), "--threads"),
    (("matrix", "{t}"), "--axis is required"),
    (("matrix", "{t}", "--axis", "2"), "--axis must be 0 (columns) or 1 (rows)"),
    (("matrix", "{t}", "--axis", "0", "--norm", "l3"), "--norm must be l1, l2 or max"),
    (("matrix", "{t}", "--axis", "0", "--prune", "-1"), "--prune"),
    (("matrix", "{t}", "--axis", "0", "--constant-norm", "inf"), "target norm"),
    (("stats", "{t}", "--bins", "0"), "--bins"),
    (("stats", "{t}", "--axis", "3"), "--axis"),
])
def test_usage_errors(tmp_path, table, args, needle):
    args = [a.format(t=table, d=tmp_path) for a in args]
    refuse(tmp_path, args, 2, needle)


def test_rows_on_a_sparse_file_and_in_place_on_text(tmp_path):
    sp.save_npz(tmp_path / "m.npz", sp.random(4, 4, density=0.5, random_state=0))
    refuse(tmp_path, ["rows", tmp_path / "m.npz", "--all", "--max-norm", "1"], 2, "not .npz files")
    (tmp_path / "m.mtx").write_text("%%MatrixMarket matrix coordinate real general\n1 1 1\n1 1 2\n")
    refuse(tmp_path, ["matrix", tmp_path / "m.mtx", "--axis", "0", "--in-place"], 2, "a .mtx file is text")


def test_several_tensors_need_a_name(tmp_path):
    a = np.ones((2, 2), np.float32).tobytes()
    write_safetensors(tmp_path / "m.safetensors", [("a", "F32", (2, 2), a), ("b", "F32", (2, 2), a)])
    refuse(tmp_path, ["rows", tmp_path / "m.safetensors", "--all", "--max-norm", "1"], 2,
           "holds 2 tensors ('a', 'b'); name one with --tensor NAME")


# ---------------------------------------------------------------------------
# files and values: status 1

def test_missing_unreadable_and_unknown_files(tmp_path, table):
    refuse(tmp_path, ["stats", tmp_path / "nope.npy"], 1, "cannot open", "No such file")
    refuse(tmp_path, ["stats", tmp_path], 1, "is not a regular file")
    (tmp_path / "x.bin").write_bytes(b"hello")
    refuse(tmp_path, ["stats", tmp_path / "x.bin"], 1, "cannot tell the format")
    refuse(tmp_path, ["rows", table, "--indices", tmp_path / "none.txt", "--max-norm", "1"], 1, "none.txt")
    refuse(tmp_path, ["rows", table, "--all", "--max-norm", "1", "-o", tmp_path / "no" / "dir.npy"], 1,
           "does not exist")


@pytest.mark.parametrize("text,needle", [
    ("1\n5\n", "line 2 of the index file holds the index 5, outside the table's rows [0, 5)"),
    ("0\n-1\n", "line 2 of the index file holds the index -1"),
    ("1 2\n", "line 1 of the index file holds '1 2', not one integer"),
    ("1.0\n", "'1.0', not one integer"),
    ("0x3\n", "not one integer"),
    ("99999999999999999999\n", "does not fit in 64 bits"),
])
def test_bad_text_indices(tmp_path, table, text, needle):
    (tmp_path / "i.txt").write_text(text)
    refuse(tmp_path, ["rows", table, "--indices", tmp_path / "i.txt", "--max-norm", "1"], 1, needle)


@pytest.mark.parametrize("array,needle", [
    (np.array([0, 1, 7]), "index 2 of the index array is 7"),
    (np.array([[0, 1]]), "not 1-D"),
    (np.array([0.0, 1.0]), "does not hold integers"),
    (np.array([2**63 + 5], dtype=np.uint64), "beyond 2^63"),
])
def test_bad_npy_indices(tmp_path, table, array, needle):
    np.save(tmp_path / "i.npy", array)
    refuse(tmp_path, ["rows", table, "--indices", tmp_path / "i.npy", "--max-norm", "1"], 1, needle)


@pytest.mark.parametrize("array,needle", [
    (np.ones(5, np.float32), "not 2-D"),
    (np.ones((2, 2, 2), np.float32), "not 2-D"),
    (np.ones((3, 3), np.int32), "'<i4' elements"),
    (np.ones((3, 3), np.complex64), "'<c8' is not supported"),
    (np.ones((3, 3), np.dtype(">f4")), "big-endian"),
    (np.asfortranarray(np.ones((3, 2), np.float32)), "Fortran-order"),
])
def test_tables_rows_refuses(tmp_path, array, needle):
    np.save(tmp_path / "w.npy", array)
    refuse(tmp_path, ["rows", tmp_path / "w.npy", "--all", "--max-norm", "1"], 1, needle)


def test_void2_needs_the_bfloat16_flag(tmp_path):
    save_npy_raw(tmp_path / "w.npy", "<V2", (2, 2), b"\0" * 8)
    refuse(tmp_path, ["rows", tmp_path / "w.npy", "--all", "--max-norm", "1"], 1, "pass --npy-bfloat16")


def test_safetensors_tensor_choice(tmp_path):
    write_safetensors(tmp_path / "m.safetensors", [("ids", "I64", (2, 2), b"\0" * 32),
                                                   ("v", "F32", (4,), b"\0" * 16)])
    f = tmp_path / "m.safetensors"
    refuse(tmp_path, ["rows", f, "--tensor", "w", "--all", "--max-norm", "1"], 1, "no tensor named 'w'")
    refuse(tmp_path, ["rows", f, "--tensor", "ids", "--all", "--max-norm", "1"], 1, "dtype 'I64'")
    refuse(tmp_path, ["rows", f, "--tensor", "v", "--all", "--max-norm", "1"], 1, "is not 2-D")


def test_nonfinite_row_fails_when_asked(tmp_path):
    w = np.ones((3, 2), np.float32)
    w[2, 1] = np.nan
    np.save(tmp_path / "w.npy", w)
    refuse(tmp_path, ["rows", tmp_path / "w.npy", "--all", "--max-norm", "1", "--fail-on-nonfinite"], 1,
           "NaN or infinity")


def test_in_place_needs_aligned_data(tmp_path):
    # A header of odd length puts the float32 data at an odd offset.
    a = np.ones((2, 2), np.float32).tobytes()
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    assert len(header) % 4 != 0
    (tmp_path / "m.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + a)
    refuse(tmp_path, ["rows", tmp_path / "m.safetensors", "--all", "--max-norm", "0.5", "--in-place"], 1,
           "not a multiple of its element size")


# ---------------------------------------------------------------------------
# malformed files, parser by parser. Each is offered to two commands: one
# that only reads, one that would write.

def npy(header, payload=b"", version=1, length=None):
    h = header.encode("latin1")
    if version == 1:
        pre = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h) if length is None else length)
    else:
        pre = b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(h) if length is None else length)
    return pre + h + payload


GOOD = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"
NPY_CASES = {
    "short": (b"\x93NUM", "too short to be a .npy file"),
    "magic": (b"\x93NUMPX\x01\x00" + b" " * 64, "magic string"),
    "version": (npy(GOOD, b"\0" * 16, version=4), "format version 4.0"),
    "header beyond file": (npy(GOOD, length=5000), "truncated: its header needs 5000 bytes"),
    "header too long": (npy(GOOD, version=2, length=1 << 20), "exceeds the limit of 65536"),
    "not a dict": (npy("[1, 2]"), "expected '{'"),
    "no shape": (npy("{'descr': '<f4', 'fortran_order': False}"), "lacks the key 'shape'"),
    "unknown key": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"), "unexpected key 'x'"),
    "twice": (npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}"), "appears twice"),
    "structured": (npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}"), "structured dtype"),
    "object": (npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}"), "'|O' is not supported"),
    "negative": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2)}"), "negative"),
    "overflow": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}"),
                 "more elements than fit in 64 bits"),
    "huge dim": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}"),
                 "does not fit in 64 bits"),
    "not a tuple": (npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4)}"), "not a tuple"),
    "bool": (npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}"), "expected True or False"),
    "escape": (npy("{'descr': '<f\\4', 'fortran_order': False, 'shape': (1,)}"), "escapes"),
    "open string": (npy("{'descr': '<f4"), "not closed"),
    "after dict": (npy(GOOD + " junk"), "unexpected text after"),
    "truncated data": (npy(GOOD, b"\0" * 15), "only 15 bytes of data follow"),
    "trailing data": (npy(GOOD, b"\0" * 17), "1 bytes after the data"),
}


@pytest.mark.parametrize("name", NPY_CASES)
def test_malformed_npy(tmp_path, name):
    content, needle = NPY_CASES[name]
    (tmp_path / "w.npy").write_bytes(content)
    refuse(tmp_path, ["stats", tmp_path / "w.npy"], 1, needle)
    refuse(tmp_path, ["rows", tmp_path / "w.npy", "--all", "--max-norm", "1"], 1, needle)


def st(header, data=b"", length=None):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def entry(dtype="F32", shape=(2, 2), offsets=(0, 16)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


Z16 = b"\0" * 16
ST_CASES = {
    "short": (b"\x10\0\0", "too short to be a safetensors file"),
    "huge header": (st({"w": entry()}, Z16, length=1 << 40), "exceeds the limit of 100000000"),
    "header beyond file": (st({"w": entry()}, Z16, length=500), "truncated: its header needs 500 bytes"),
    "no brace": (st(b"[1, 2]"), "does not start with '{'"),
    "bad json": (st(b'{"w": '), "not valid JSON"),
    "invalid utf8": (st(b'{"w\xff": 1}'), "not valid JSON"),
    "duplicate": (st(b'{"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}, '
                     b'"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}', Z16),
                  "'w' appears twice"),
    "duplicate field": (st(b'{"w": {"dtype": "F32", "dtype": "F16", "shape": [2, 2], "data_offsets": [0, 16]}}', Z16),
                        "'dtype' appears twice"),
    "deep": (st(b'{"w": {"shape": [[[[1]]]]}}'), "deeper than three levels"),
    "not object entry": (st({"w": [1]}), "is not an object"),
    "missing field": (st({"w": {"dtype": "F32", "shape": [4]}}), "lacks one of the fields"),
    "extra field": (st({"w": dict(entry(), extra=1)}, Z16), "unexpected field 'extra'"),
    "dtype type": (st({"w": entry(dtype=4)}, Z16), "dtype of tensor 'w' is not a string"),
    "dtype name": (st({"w": entry(dtype="f32 ")}, Z16), "invalid dtype 'f32 '"),
    "negative dim": (st({"w": entry(shape=(-2, 2))}, Z16), "is not a non-negative integer"),
    "float dim": (st({"w": entry(shape=(2.0, 2))}, Z16), "is not a non-negative integer"),
    "count overflow": (st({"w": entry(shape=(2**40, 2**40))}, Z16), "does not fit in 64 bits"),
    "size mismatch": (st({"w": entry(shape=(2, 3))}, Z16), "needs 24 bytes but its data_offsets span 16"),
    "backwards": (st({"w": entry(offsets=(16, 0))}, Z16), "ends (0) before it begins (16)"),
    "beyond data": (st({"w": entry(offsets=(16, 32))}, Z16), "ends at byte 32 of a data section of 16"),
    "overlap": (st({"a": entry(offsets=(0, 16)), "b": entry(offsets=(8, 24))}, Z16 + b"\0" * 8), "overlap"),
    "hole": (st({"a": entry(shape=(2,), offsets=(0, 8)), "b": entry(shape=(2,), offsets=(12, 20))}, b"\0" * 20),
             "hole of 4 bytes before tensor 'b'"),
    "trailing": (st({"w": entry()}, Z16 + b"\0"), "1 bytes that no tensor describes"),
    "metadata": (st({"__metadata__": {"k": 1}, "w": entry()}, Z16), "value of 'k' is not a string"),
    "offsets": (st({"w": dict(entry(), data_offsets=[0])}, Z16), "not a [begin, end] pair"),
}


@pytest.mark.parametrize("name", ST_CASES)
def test_malformed_safetensors(tmp_path, name):
    content, needle = ST_CASES[name]
    (tmp_path / "m.safetensors").write_bytes(content)
    refuse(tmp_path, ["stats", tmp_path / "m.safetensors"], 1, needle)
    refuse(tmp_path, ["rows", tmp_path / "m.safetensors", "--all", "--max-norm", "1"], 1, needle)


def npz(members, compression=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, value in members.items():
            if isinstance(value, bytes):
                z.writestr(name, value)
            else:
                b = io.BytesIO()
                np.save(b, value)
                z.writestr(name, b.getvalue())
    return buf.getvalue()


def csr(**changes):
    m = {"indices": np.array([0, 2, 1], np.int32), "indptr": np.array([0, 2, 3], np.int32),
         "format": np.array(b"csr"), "shape": np.array([2, 3]), "data": np.array([1.0, 2.0, 3.0])}
    m.update(changes)
    return {k + ".npy": v for k, v in m.items() if v is not None}


def coo(**changes):
    m = {"row": np.array([0, 1], np.int64), "col": np.array([1, 2], np.int64), "format": np.array(b"coo"),
         "shape": np.array([2, 3]), "data": np.array([1.0, 2.0], np.float32)}
    m.update(changes)
    return {k + ".npy": v for k, v in m.items() if v is not None}


def zip_bomb():
    """A deflated member whose headers claim far more bytes than deflate can
    make of its compressed size."""
    data = bytearray(npz(csr(), zipfile.ZIP_DEFLATED))
    claimed = struct.pack("<I", 0xFFFFFFF0)
    for sig, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        data[at + size_at:at + size_at + 4] = claimed
    return bytes(data)


def corrupt_crc():
    data = bytearray(npz(csr(), zipfile.ZIP_STORED))
    at = data.find(b"PK\x03\x04")
    name_len, extra_len = struct.unpack("<HH", data[at + 26:at + 30])
    data[at + 30 + name_len + extra_len + 100] ^= 0xFF  # a byte of the first member's body
    return bytes(data)


NPZ_CASES = {
    "not zip": (b"PK\x03\x04" + b"\0" * 60, "not a readable zip archive"),
    "truncated": (npz(csr())[:-30], "not a readable zip archive"),
    "no format": (npz(csr(format=None)), "no format.npy"),
    "unknown member": (npz(dict(csr(), **{"extra.npy": np.zeros(1)})), "member 'extra.npy'"),
    "dia": (npz(dict(csr(format=np.array(b"dia")), **{"offsets.npy": np.zeros(1)})), "DIA or BSR"),
    "bsr": (npz(csr(format=np.array(b"bsr"))), "convert it with .tocsr()"),
    "unknown format": (npz(csr(format=np.array(b"lil"))), "format 'lil' is not csr, csc or coo"),
    "format dtype": (npz(csr(format=np.array(3))), "format is not a string"),
    "shape": (npz(csr(shape=np.array([2, 3, 4]))), "shape.npy is not two integers"),
    "negative shape": (npz(csr(shape=np.array([-2, 3]))), "is negative"),
    "int data": (npz(csr(data=np.array([1, 2, 3]))), "convert them to float32 or float64"),
    "2-D data": (npz(csr(data=np.ones((3, 1)))), "data is not 1-D"),
    "float indices": (npz(csr(indices=np.array([0.0, 2.0, 1.0]))), "indices does not hold int32 or int64"),
    "indptr length": (npz(csr(indptr=np.array([0, 3], np.int32))), "indptr has 2 entries"),
    "indices length": (npz(csr(indices=np.array([0, 2], np.int32))), "indices has 2 entries but data has 3"),
    "indptr start": (npz(csr(indptr=np.array([1, 2, 3], np.int32))), "indptr[0] = 1, not 0"),
    "indptr order": (npz(csr(indptr=np.array([0, 3, 2], np.int32), indices=np.array([0, 1, 2], np.int32))),
                     "indptr decreases at position 2"),
    "indptr end": (npz(csr(indptr=np.array([0, 1, 2], np.int32))), "indptr ends at 2 but data holds 3"),
    "column range": (npz(csr(indices=np.array([0, 3, 1], np.int32))), "indices[1] = 3 is outside [0, 3)"),
    "coo range": (npz(coo(row=np.array([0, 2]))), "row[1] = 2 is outside [0, 2)"),
    "coo negative": (npz(coo(col=np.array([-1, 0]))), "col[0] = -1"),
    "coo lengths": (npz(coo(col=np.array([1]))), "different lengths"),
    "coo with indptr": (npz(dict(coo(), **{"indptr.npy": np.zeros(3, np.int32)})), "coo matrix has indices.npy or indptr.npy"),
    "coo missing": (npz(coo(col=None)), "needs row.npy and col.npy"),
    "member npy": (npz(dict(csr(), **{"data.npy": b"\x93NUMPY\x01\x00\x05\x00{'de"})), "member 'data.npy'"),
    "zip bomb": (zip_bomb(), "more than deflate can produce"),
    "crc": (corrupt_crc(), "cannot read"),
}


@pytest.mark.parametrize("name", NPZ_CASES)
def test_malformed_npz(tmp_path, name):
    content, needle = NPZ_CASES[name]
    (tmp_path / "m.npz").write_bytes(content)
    refuse(tmp_path, ["stats", tmp_path / "m.npz"], 1, needle)
    refuse(tmp_path, ["matrix", tmp_path / "m.npz", "--axis", "0"], 1, needle)


B = "%%MatrixMarket matrix coordinate real general\n"
MTX_CASES = {
    "empty": ("", "the Matrix Market file is empty"),
    "banner": ("%MatrixMarket matrix coordinate real general\n1 1 0\n", "line 1: the first line"),
    "banner words": ("%%MatrixMarket matrix coordinate real\n", "the first line is not"),
    "object": ("%%MatrixMarket vector coordinate real general\n", "object 'vector'"),
    "array": ("%%MatrixMarket matrix array real general\n1 1\n1\n", "dense 'array' files are not supported"),
    "complex": ("%%MatrixMarket matrix coordinate complex general\n", "complex matrices"),
    "hermitian": ("%%MatrixMarket matrix coordinate real hermitian\n", "hermitian"),
    "field": ("%%MatrixMarket matrix coordinate quaternion general\n", "'quaternion'"),
    "symmetry": ("%%MatrixMarket matrix coordinate real diagonal\n", "'diagonal'"),
    "no size": (B + "% only comments\n", "ends before its size line"),
    "size fields": (B + "2 2\n", "line 2: the size line"),
    "size negative": (B + "-2 2 0\n", "a size is negative"),
    "size text": (B + "2 x 0\n", "the column count 'x' is not an integer"),
    "too many declared": (B + "5 5 1000000\n1 1 1\n", "declares 1000000 entries but the rest of the file"),
    "not square": ("%%MatrixMarket matrix coordinate real symmetric\n2 3 0\n", "must be square"),
    "fields": (B + "2 2 1\n1 1\n", "line 3: an entry has fewer than the 3 fields"),
    "pattern fields": ("%%MatrixMarket matrix coordinate pattern general\n2 2 1\n1 1 1\n", "more than the 2"),
    "row zero": (B + "2 2 1\n0 1 1\n", "row index 0 is outside [1, 2]"),
    "col big": (B + "2 2 1\n1 3 1\n", "column index 3 is outside [1, 2]"),
    "upper": ("%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n1 2 1\n", "above the diagonal"),
    "skew diagonal": ("%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n1 1 1\n", "not below the diagonal"),
    "value": (B + "2 2 1\n1 1 one\n", "the value 'one' is not a real number"),
    "integer value": ("%%MatrixMarket matrix coordinate integer general\n2 2 1\n1 1 1.5\n", "'1.5' is not an integer"),
    "fewer": (B + "2 2 3\n1 1 1\n2 2 1\n", "ends after 2 of the 3 entries"),
    "more": (B + "2 2 1\n1 1 1\n2 2 1\n", "line 4: there are more entries than the 1"),
    "index overflow": (B + "2 2 1\n99999999999999999999 1 1\n", "does not fit in 64 bits"),
}


@pytest.mark.parametrize("name", MTX_CASES)
def test_malformed_mtx(tmp_path, name):
    content, needle = MTX_CASES[name]
    (tmp_path / "m.mtx").write_text(content)
    refuse(tmp_path, ["stats", tmp_path / "m.mtx"], 1, needle)
    refuse(tmp_path, ["matrix", tmp_path / "m.mtx", "--axis", "0"], 1, needle)


def test_hostile_names_stay_on_one_printable_line(tmp_path):
    name = "evil\n\x1b[31mred\x1b[0m"
    a = np.ones((1, 1), np.float32).tobytes()
    write_safetensors(tmp_path / "m.safetensors", [(name, "F32", (1, 1), a), ("b", "F32", (1, 1), a)])
    line = refuse(tmp_path, ["rows", tmp_path / "m.safetensors", "--all", "--max-norm", "1"], 2, "\\x0a", "\\x1b")
    assert "\x1b" not in line


def test_all_rows_of_a_huge_empty_table(tmp_path):
    save_npy_raw(tmp_path / "w.npy", "<f4", (2**62, 0), b"")
    refuse(tmp_path, ["rows", tmp_path / "w.npy", "--all", "--max-norm", "1"], 1,
           "not enough memory for the index list of --all (4611686018427387904 rows)")
