"""ctypes binding of sparsenorm's CUDA C interface (include/sparsenorm/c_api_cuda.h),
used by bench/compare_gpu.py. Works on raw device addresses, so any framework's
tensors will do (torch, CuPy): pass data_ptr() / .data.ptr and a stream handle
(torch.cuda.current_stream().cuda_stream, cupy.cuda.get_current_stream().ptr).

The calls are asynchronous: *_async only enqueues work on the stream (no
synchronization, no allocation: the caller provides the scratch memory), and
*_result waits for the stream and returns the statistics or raises."""

import ctypes
import os

from sparsenorm_ctypes import DTYPE_CODES, INDEX_CODES, Options, RowStats, SparsenormError

FORMAT_CODES = {"csr": 0, "csc": 1, "coo": 2}


class MatrixStats(ctypes.Structure):
    _fields_ = [("vectors", ctypes.c_int64), ("vectors_scaled", ctypes.c_int64),
                ("zero_vectors", ctypes.c_int64), ("nonfinite_vectors", ctypes.c_int64),
                ("pruned", ctypes.c_int64), ("nnz_before", ctypes.c_int64), ("nnz_after", ctypes.c_int64)]


_vp, _i32, _i64, _sz, _dbl = ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_size_t, ctypes.c_double


class CudaLibrary:
    def __init__(self, path=None):
        self.lib = ctypes.CDLL(path or os.environ["SPARSENORM_C_LIBRARY"])
        lib = self.lib
        if not hasattr(lib, "sparsenorm_cuda_normalize_rows_async"):
            raise RuntimeError(f"{path}: built without SPARSENORM_CUDA")
        lib.sparsenorm_cuda_device_count.restype = ctypes.c_int
        lib.sparsenorm_cuda_rows_scratch_bytes.restype = _sz
        lib.sparsenorm_cuda_rows_scratch_bytes.argtypes = [_i64, _i64]
        lib.sparsenorm_cuda_normalize_rows_async.restype = ctypes.c_int
        lib.sparsenorm_cuda_normalize_rows_async.argtypes = [
            _vp, _i32, _i64, _i64, _i64, _vp, _i32, _i64, ctypes.POINTER(Options), _vp, _sz, _vp,
            ctypes.c_char_p, _sz]
        lib.sparsenorm_cuda_rows_result.restype = ctypes.c_int
        lib.sparsenorm_cuda_rows_result.argtypes = [_vp, _vp, ctypes.POINTER(RowStats), ctypes.c_char_p, _sz]
        lib.sparsenorm_cuda_sparse_scratch_bytes.restype = _sz
        lib.sparsenorm_cuda_sparse_scratch_bytes.argtypes = [
            _i32, _i64, _i64, _i64, _vp, _i32, _i32, _vp, _vp, _vp, _vp, _i32, _dbl, ctypes.POINTER(Options)]
        lib.sparsenorm_cuda_normalize_sparse_async.restype = ctypes.c_int
        lib.sparsenorm_cuda_normalize_sparse_async.argtypes = [
            _i32, _i64, _i64, _i64, _vp, _i32, _i32, _vp, _vp, _vp, _vp, _i32, _dbl, ctypes.POINTER(Options),
            _vp, _sz, _vp, ctypes.c_char_p, _sz]
        lib.sparsenorm_cuda_matrix_result.restype = ctypes.c_int
        lib.sparsenorm_cuda_matrix_result.argtypes = [_vp, _vp, ctypes.POINTER(MatrixStats), ctypes.c_char_p, _sz]
        lib.sparsenorm_default_options.argtypes = [ctypes.POINTER(Options)]
        self._error = ctypes.create_string_buffer(1024)

    def device_count(self):
        return self.lib.sparsenorm_cuda_device_count()

    def options(self, **kwargs):
        o = Options()
        self.lib.sparsenorm_default_options(ctypes.byref(o))
        for k, v in kwargs.items():
            setattr(o, k, v)
        return o

    def _check(self, code):
        if code != 0:
            raise SparsenormError(code, self._error.value.decode())

    # -- row operator ---------------------------------------------------------

    def rows_scratch_bytes(self, rows, num_indices):
        return self.lib.sparsenorm_cuda_rows_scratch_bytes(rows, num_indices)

    def normalize_rows_async(self, data, dtype, rows, cols, row_stride, indices, index_type, count, options,
                             scratch, scratch_bytes, stream):
        self._check(self.lib.sparsenorm_cuda_normalize_rows_async(
            data, DTYPE_CODES[dtype], rows, cols, row_stride, indices, INDEX_CODES[index_type], count,
            ctypes.byref(options), scratch, scratch_bytes, stream, self._error, len(self._error)))

    def rows_result(self, scratch, stream):
        stats = RowStats()
        self._check(self.lib.sparsenorm_cuda_rows_result(scratch, stream, ctypes.byref(stats), self._error,
                                                         len(self._error)))
        return stats

    # -- sparse matrix normalization --------------------------------------------

    def _sparse_args(self, fmt, shape, nnz, values, dtype, index_type, indptr, indices, row, col, axis,
                     prune_below, options):
        return (FORMAT_CODES[fmt], shape[0], shape[1], nnz, values, DTYPE_CODES[dtype], INDEX_CODES[index_type],
                indptr, indices, row, col, axis, prune_below, ctypes.byref(options))

    def sparse_scratch_bytes(self, *args):
        return self.lib.sparsenorm_cuda_sparse_scratch_bytes(*self._sparse_args(*args))

    def normalize_sparse_async(self, fmt, shape, nnz, values, dtype, index_type, indptr, indices, row, col, axis,
                               prune_below, options, scratch, scratch_bytes, stream):
        args = self._sparse_args(fmt, shape, nnz, values, dtype, index_type, indptr, indices, row, col, axis,
                                 prune_below, options)
        self._check(self.lib.sparsenorm_cuda_normalize_sparse_async(
            *args, scratch, scratch_bytes, stream, self._error, len(self._error)))

    def matrix_result(self, scratch, stream):
        stats = MatrixStats()
        self._check(self.lib.sparsenorm_cuda_matrix_result(scratch, stream, ctypes.byref(stats), self._error,
                                                           len(self._error)))
        return stats
