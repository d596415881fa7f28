"""ctypes binding of sparsenorm's C interface (include/sparsenorm/c_api.h),
used by the benchmark scripts and the C interface's tests."""

import ctypes
import os

DTYPE_CODES = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 3}
INDEX_CODES = {"int32": 0, "int64": 1}


class Options(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int32), ("target", ctypes.c_double), ("p", ctypes.c_double),
                ("eps", ctypes.c_double), ("nonfinite_error", ctypes.c_int32),
                ("num_threads", ctypes.c_int32), ("backend", ctypes.c_int32)]


class RowStats(ctypes.Structure):
    _fields_ = [("indices_seen", ctypes.c_int64), ("distinct_rows", ctypes.c_int64),
                ("rows_scaled", ctypes.c_int64), ("nonfinite_rows", ctypes.c_int64)]


class SparsenormError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


class Library:
    def __init__(self, path=None):
        self.lib = ctypes.CDLL(path or os.environ["SPARSENORM_C_LIBRARY"])
        f = self.lib.sparsenorm_normalize_rows
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_int64,
                      ctypes.c_int64, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64,
                      ctypes.POINTER(Options), ctypes.POINTER(RowStats), ctypes.c_char_p,
                      ctypes.c_size_t]
        self.lib.sparsenorm_default_options.argtypes = [ctypes.POINTER(Options)]
        self.lib.sparsenorm_version.restype = ctypes.c_char_p

    def version(self):
        return self.lib.sparsenorm_version().decode()

    def options(self, **kwargs):
        o = Options()
        self.lib.sparsenorm_default_options(ctypes.byref(o))
        for k, v in kwargs.items():
            setattr(o, k, v)
        return o

    def normalize_rows(self, data, dtype, rows, cols, row_stride, indices, index_type, count,
                       options):
        """Raw call on addresses; raises SparsenormError on failure."""
        stats = RowStats()
        error = ctypes.create_string_buffer(1024)
        code = self.lib.sparsenorm_normalize_rows(
            data, DTYPE_CODES[dtype], rows, cols, row_stride, indices, INDEX_CODES[index_type],
            count, ctypes.byref(options), ctypes.byref(stats), error, len(error))
        if code != 0:
            raise SparsenormError(code, error.value.decode())
        return stats

    def embedding_renorm_(self, table, indices, max_norm, norm_type=2.0, **options):
        """torch.embedding_renorm_ semantics on a 2-D CPU torch tensor, in place."""
        o = self.options(target=max_norm, p=norm_type, eps=1e-7, **options)
        return self.normalize_rows(
            table.data_ptr(), str(table.dtype).replace("torch.", ""), table.shape[0],
            table.shape[1], table.stride(0), indices.data_ptr(),
            str(indices.dtype).replace("torch.", ""), indices.numel(), o)
