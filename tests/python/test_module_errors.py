"""Every way a call of the row functions can be refused: the exception class,
the message (the C++ layer's, naming the value and where it is), and the
caller's data byte for byte unchanged."""

import math

import numpy as np
import pytest
import torch

import sparsenorm
from module_util import snapshot, unchanged


def numpy_table():
    return np.random.default_rng(1).standard_normal((10, 4)).astype(np.float32) * 3


def torch_table():
    return torch.from_numpy(numpy_table())


def refused(exception, match, table, indices, *args, function=sparsenorm.normalize_rows_,
            **kwargs):
    before = snapshot(table)
    with pytest.raises(exception, match=match) as info:
        function(table, indices, *args, **kwargs)
    assert unchanged(table, before), "a refused call modified the table"
    return info.value


@pytest.mark.parametrize("make", [numpy_table, torch_table])
@pytest.mark.parametrize("indices,position,value", [
    ([1, 2, 10], 2, 10),
    ([-1], 0, -1),
    ([3, 4, 5, 6, 7, 8, 9, 1000000, 0], 7, 1000000),
    (np.array([0, 11], dtype=np.int32), 1, 11),
    (torch.tensor([[0, 1], [2, -5]]), 3, -5),
])
def test_index_out_of_range(make, indices, position, value):
    e = refused(IndexError, rf"indices\[{position}\] = {value} is out of range for 10 table rows",
                make(), indices, 0.5)
    assert "valid indices are 0 to 9" in str(e)


def test_index_out_of_range_in_every_function():
    refused(IndexError, r"indices\[0\] = 10", numpy_table(), [10],
            function=sparsenorm.set_row_norms_)
    refused(IndexError, r"indices\[1\] = 12", torch_table(), [0, 12], 1.0,
            function=sparsenorm.embedding_renorm_)


def test_empty_table_has_no_valid_index():
    refused(IndexError, r"indices\[0\] = 0 is out of range: the table row count is 0",
            np.zeros((0, 3)), [0])


@pytest.mark.parametrize("kwargs,match", [
    ({"max_norm": -1.0}, r"options.target = -1 is invalid"),
    ({"max_norm": math.nan}, r"options.target = nan is invalid"),
    ({"max_norm": math.inf}, r"options.target = inf is invalid"),
    ({"p": 0.0}, r"options.p = 0 is invalid: the norm order must be > 0"),
    ({"p": -2.0}, r"options.p = -2 is invalid"),
    ({"p": math.nan}, r"options.p = nan is invalid"),
    ({"eps": -1e-3}, r"options.eps = -0.001 is invalid"),
    ({"eps": math.inf}, r"options.eps = inf is invalid"),
    ({"num_threads": -1}, r"options.num_threads = -1 is invalid"),
    ({"num_threads": 2 ** 40}, r"num_threads = 1099511627776 is invalid"),
    ({"non_finite": "ignore"}, r"non_finite='ignore' is not one of 'skip', 'error'"),
    ({"backend": "gpu"}, r"backend='gpu' is not one of 'auto', 'reference'"),
])
@pytest.mark.parametrize("make", [numpy_table, torch_table])
def test_bad_options(make, kwargs, match):
    refused(ValueError, match, make(), [1, 2], **kwargs)


def test_bad_option_in_the_presets():
    refused(ValueError, r"options.target = -2", numpy_table(), [1], norm=-2.0,
            function=sparsenorm.set_row_norms_)
    refused(ValueError, r"options.p = 0", torch_table(), [1], 1.0, 0.0,
            function=sparsenorm.embedding_renorm_)


@pytest.mark.parametrize("table,match", [
    (np.zeros(5, np.float32), r"table must be a 2-D array \(rows x columns\); got shape \(5,\)"),
    (np.zeros((2, 3, 4), np.float32), r"got shape \(2, 3, 4\)"),
    (torch.zeros(()), r"got shape \(\)"),
])
def test_bad_shapes(table, match):
    refused(ValueError, match, table, [0])


def test_read_only_array():
    table = numpy_table()
    table.setflags(write=False)
    refused(ValueError, "table is a read-only NumPy array", table, [0])


@pytest.mark.parametrize("table,match", [
    (np.ones((4, 3), np.int32), r"table has dtype int32; sparsenorm handles float16, bfloat16"),
    (np.ones((4, 3), np.complex64), r"table has dtype complex64"),
    (np.ones((4, 3), bool), r"table has dtype bool"),
    (np.ones((4, 3), ">f4"), r"table has dtype >f4"),
    (torch.ones(4, 3, dtype=torch.int64), r"table has dtype int64"),
    (torch.ones(4, 3, dtype=torch.complex64), r"table has dtype complex64"),
])
def test_unsupported_table_dtypes(table, match):
    refused(TypeError, match, table, [0])


@pytest.mark.parametrize("table,match", [
    (np.ones((4, 3), np.float32, order="F"), r"element strides \(1, 4\): its rows are not"),
    (np.ones((4, 3), np.float32)[::-1], r"element strides \(-3, 1\)"),
    (np.ones((4, 6), np.float32)[:, ::2], r"element strides \(6, 2\)"),
    (torch.ones(4, 3).t(), r"element strides \(1, 3\)"),
    (torch.ones(1, 3).expand(4, 3), r"element strides \(0, 1\)"),  # overlapping rows
    (np.lib.stride_tricks.as_strided(np.ones(8, np.float32), (4, 3), (8, 4)),
     r"element strides \(2, 1\)"),
])
def test_layouts_that_would_need_a_copy(table, match):
    e = refused(TypeError, match, table, [0, 1])
    assert "does not work on a hidden copy" in str(e)


def test_misaligned_memory():
    raw = bytearray(4 * 3 * 4 + 2)
    table = np.ndarray((4, 3), dtype=np.float32, buffer=raw, offset=2)
    table[...] = 3.0
    refused(TypeError, r"not aligned to its 4-byte elements", table, [0])


def test_sparse_torch_tensors():
    table = torch.ones(4, 3).to_sparse()
    with pytest.raises(TypeError, match=r"cannot be shared through DLPack without a copy: .*layout"):
        sparsenorm.normalize_rows_(table, [0])
    assert torch.equal(table.to_dense(), torch.ones(4, 3))


@pytest.mark.parametrize("table", [[[1.0, 2.0]], "table", None, 3.0])
def test_objects_that_are_not_arrays(table):
    with pytest.raises(TypeError, match="table must be an array that sparsenorm can modify"):
        sparsenorm.normalize_rows_(table, [0])


@pytest.mark.parametrize("indices,match", [
    (np.array([0.0, 1.0]), r"indices has dtype float64; index arrays must hold int32 or int64"),
    (np.array([True, False]), r"indices has dtype bool"),
    (np.array([0, 1], np.uint8), r"indices has dtype uint8; index arrays must hold int32 or int64"),
    (np.array([0, 1], np.int16), r"indices has dtype int16"),
    (torch.tensor([0.0, 1.0]), r"indices has dtype float32"),
    (torch.tensor([0, 1], dtype=torch.int16), r"indices has dtype int16"),
    ([0.5, 1], r"indices must be an integer array or a sequence of integers; got list holding "
               r"float64 values"),
    ("01", r"indices must be an integer array or a sequence of integers; got str"),
    (1.0, r"got float"),
    ([[0, 1], [2]], r"indices must be an integer array or a sequence of integers"),
])
def test_unsupported_indices(indices, match):
    refused(TypeError, match, numpy_table(), indices)


@pytest.mark.parametrize("indices,match", [
    ([1, 2 ** 70], r"indices\[1\] = 1180591620717411303424 is out of range: it does not fit"),
    ([0, 2 ** 63], r"indices\[1\] = 9223372036854775808 is out of range"),
    ([[0], [-2 ** 64]], r"indices\[1\] = -18446744073709551616 is out of range"),
])
def test_indices_beyond_64_bits(indices, match):
    refused(IndexError, match, numpy_table(), indices)


@pytest.mark.parametrize("kwargs,match", [
    ({"max_norm": "one"}, r"max_norm must be a real number; got 'one'"),
    ({"p": None}, r"p must be a real number; got None"),
    ({"eps": [1e-3]}, r"eps must be a real number"),
    ({"num_threads": 2.0}, r"num_threads must be an integer or None; got 2.0"),
])
def test_option_types(kwargs, match):
    refused(TypeError, match, numpy_table(), [0], **kwargs)


def test_norm_type_is_named_in_the_torch_preset():
    refused(TypeError, r"norm_type must be a real number", torch_table(), [0], 1.0, None,
            function=sparsenorm.embedding_renorm_)


def test_non_finite_rows_under_the_error_policy():
    table = numpy_table()
    table[7, 1] = np.nan
    e = refused(sparsenorm.NonFiniteError, r"row 7 \(indices\[2\]\) holds NaN or infinity",
                table, [0, 3, 7, 3], 0.1, non_finite="error")
    assert isinstance(e, ValueError) and "nothing was modified" in str(e)


def test_tensor_that_requires_grad_outside_no_grad():
    emb = torch.nn.Embedding(10, 4)
    e = refused(RuntimeError, r"table requires grad and gradient recording is on", emb.weight,
                [1], 0.1)
    assert "torch.no_grad()" in str(e)
    # The same call under no_grad is fine.
    with torch.no_grad():
        assert sparsenorm.normalize_rows_(emb.weight, [1], 0.1).distinct_rows == 1


def test_nothing_is_written_when_the_last_index_is_bad():
    # The bad index comes after many good ones that a careless implementation
    # would already have processed.
    rng = np.random.default_rng(2)
    table = rng.standard_normal((100000, 16)).astype(np.float32) * 10
    idx = np.append(rng.integers(0, 100000, size=50000), 100000)
    refused(IndexError, r"indices\[50000\] = 100000", table, idx, 0.1)
