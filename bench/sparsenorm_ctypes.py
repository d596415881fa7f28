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


class RowsEntry(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int32), ("rows", ctypes.c_int64),
                ("cols", ctypes.c_int64), ("row_stride", ctypes.c_int64),
                ("indices", ctypes.c_void_p), ("index_type", ctypes.c_int32),
                ("num_indices", ctypes.c_int64), ("options", ctypes.POINTER(Options))]


class MatrixOptions(ctypes.Structure):
    _fields_ = [("norm", Options), ("axis", ctypes.c_int32), ("has_subset", ctypes.c_int32),
                ("subset", ctypes.c_void_p), ("subset_index_type", ctypes.c_int32),
                ("subset_size", ctypes.c_int64), ("prune_below", ctypes.c_double)]


class MatrixStats(ctypes.Structure):
    _fields_ = [("vectors", ctypes.c_int64), ("vectors_scaled", ctypes.c_int64),
                ("zero_vectors", ctypes.c_int64), ("nonfinite_vectors", ctypes.c_int64),
                ("pruned", ctypes.c_int64), ("nnz_before", ctypes.c_int64),
                ("nnz_after", ctypes.c_int64)]


# sklearn.preprocessing.normalize's norm names as norm orders.
NORM_ORDERS = {"l1": 1.0, "l2": 2.0, "max": float("inf")}
FORMAT_CODES = {"csr": 0, "csc": 1, "coo": 2}


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
        f = self.lib.sparsenorm_normalize_rows_many
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.POINTER(RowsEntry), ctypes.c_int64, ctypes.POINTER(RowStats),
                      ctypes.c_char_p, ctypes.c_size_t]
        self.lib.sparsenorm_default_options.argtypes = [ctypes.POINTER(Options)]
        self.lib.sparsenorm_default_matrix_options.argtypes = [ctypes.POINTER(MatrixOptions)]
        f = self.lib.sparsenorm_normalize_dense
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                      ctypes.POINTER(MatrixOptions), ctypes.POINTER(MatrixStats), ctypes.c_char_p,
                      ctypes.c_size_t]
        f = self.lib.sparsenorm_normalize_sparse
        f.restype = ctypes.c_int
        f.argtypes = [ctypes.c_int32, ctypes.c_int64, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64),
                      ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p,
                      ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                      ctypes.POINTER(MatrixOptions), ctypes.POINTER(MatrixStats), ctypes.c_char_p,
                      ctypes.c_size_t]
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

    def embedding_renorm_many_(self, tables, indices, max_norm, norm_type=2.0, **options):
        """embedding_renorm_ on every (table, index tensor) pair in one call;
        returns one RowStats per table."""
        o = self.options(target=max_norm, p=norm_type, eps=1e-7, **options)
        entries = (RowsEntry * len(tables))()
        for e, t, i in zip(entries, tables, indices):
            e.data, e.dtype = t.data_ptr(), DTYPE_CODES[str(t.dtype).replace("torch.", "")]
            e.rows, e.cols, e.row_stride = t.shape[0], t.shape[1], t.stride(0)
            e.indices, e.index_type = i.data_ptr(), INDEX_CODES[str(i.dtype).replace("torch.", "")]
            e.num_indices, e.options = i.numel(), ctypes.pointer(o)
        stats = (RowStats * len(tables))()
        error = ctypes.create_string_buffer(1024)
        code = self.lib.sparsenorm_normalize_rows_many(entries, len(tables), stats, error, len(error))
        if code != 0:
            raise SparsenormError(code, error.value.decode())
        return list(stats)

    # ------------------------------------------------------------------
    # Matrix normalization, on NumPy arrays and SciPy sparse matrices.

    def matrix_options(self, axis=0, norm="l2", mode="constant", target=1.0, eps=0.0, subset=None,
                       prune_below=0.0, num_threads=0, nonfinite_error=False, backend=0):
        """MatrixOptions with sklearn-style names: norm is "l1", "l2", "max" or
        a norm order p; mode "constant" scales every vector to `target`,
        "max" only those whose norm exceeds it. The subset array (if any) must
        stay alive while the options are used: it is kept on the object."""
        o = MatrixOptions()
        self.lib.sparsenorm_default_matrix_options(ctypes.byref(o))
        o.axis = axis
        o.norm.p = NORM_ORDERS[norm] if isinstance(norm, str) else float(norm)
        o.norm.mode = 1 if mode == "constant" else 0
        o.norm.target = target
        o.norm.eps = eps
        o.norm.num_threads = num_threads
        o.norm.nonfinite_error = 1 if nonfinite_error else 0
        o.norm.backend = backend
        o.prune_below = prune_below
        if subset is not None:
            import numpy as np
            subset = np.ascontiguousarray(subset)
            if subset.dtype not in (np.int32, np.int64):
                subset = subset.astype(np.int64)
            o.has_subset = 1
            o.subset = subset.ctypes.data
            o.subset_index_type = INDEX_CODES[str(subset.dtype)]
            o.subset_size = subset.size
            o._subset_keepalive = subset
        return o

    def _check(self, code, error):
        if code != 0:
            raise SparsenormError(code, error.value.decode())

    def normalize_dense_(self, a, dtype=None, **options):
        """In place on a 2-D NumPy array whose rows may be strided (its
        elements within a row contiguous). dtype overrides the element type,
        e.g. "bfloat16" for a uint16 array holding bfloat16 bits."""
        if a.ndim != 2 or (a.shape[1] > 1 and a.strides[1] != a.itemsize) or a.strides[0] % a.itemsize:
            raise TypeError("expected a 2-D array with contiguous rows")
        o = options.pop("options", None) or self.matrix_options(**options)
        stats = MatrixStats()
        error = ctypes.create_string_buffer(1024)
        code = self.lib.sparsenorm_normalize_dense(
            a.ctypes.data, DTYPE_CODES[dtype or str(a.dtype)], a.shape[0], a.shape[1],
            a.strides[0] // a.itemsize, ctypes.byref(o), ctypes.byref(stats), error, len(error))
        self._check(code, error)
        return stats

    def normalize_sparse_(self, m, dtype=None, **options):
        """In place on a SciPy CSR, CSC or COO matrix (its index arrays must
        share one dtype). With pruning the arrays are compacted in place and
        the matrix is shortened to the entries kept."""
        fmt = m.format
        o = options.pop("options", None) or self.matrix_options(**options)
        stats = MatrixStats()
        error = ctypes.create_string_buffer(1024)
        nnz = ctypes.c_int64(m.nnz if fmt != "coo" else m.data.size)
        if fmt == "coo":
            index_dtype = m.row.dtype
            if m.col.dtype != index_dtype:
                raise TypeError("row and col must have the same dtype")
            arrays = (None, None, m.row.ctypes.data, m.col.ctypes.data)
        elif fmt in ("csr", "csc"):
            index_dtype = m.indices.dtype
            if m.indptr.dtype != index_dtype:
                raise TypeError("indptr and indices must have the same dtype")
            arrays = (m.indptr.ctypes.data, m.indices.ctypes.data, None, None)
        else:
            raise TypeError(f"unsupported sparse format {fmt}")
        code = self.lib.sparsenorm_normalize_sparse(
            FORMAT_CODES[fmt], m.shape[0], m.shape[1], ctypes.byref(nnz), m.data.ctypes.data,
            DTYPE_CODES[dtype or str(m.data.dtype)], INDEX_CODES[str(index_dtype)], *arrays,
            ctypes.byref(o), ctypes.byref(stats), error, len(error))
        self._check(code, error)
        kept = nnz.value
        if kept != m.data.size:
            m.data = m.data[:kept]
            if fmt == "coo":
                m.row, m.col = m.row[:kept], m.col[:kept]
            else:
                m.indices = m.indices[:kept]
        return stats
