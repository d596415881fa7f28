# Types of the compiled module (python/src/module.cc). Its functions take
# DLPack capsules and packed options; the package's Python files are the
# public interface and document every argument.
from typing import List, Optional, Sequence, Tuple

__version__: str
HAS_CUDA: bool
DTYPES: Tuple[str, ...]

class NonFiniteError(ValueError): ...

RowStatsTuple = Tuple[int, int, int, int]
MatrixStatsTuple = Tuple[int, int, int, int, int, int, int]

def default_thread_count() -> int: ...
def simd_target() -> str: ...
def normalize_rows(table: object, indices: object, mode: int, target: float, p: float,
                   eps: float, non_finite: int, num_threads: int, backend: int,
                   stream: int) -> RowStatsTuple: ...
def normalize_rows_many(tables: list, indices: list, targets: Sequence[float], mode: int,
                        p: float, eps: float, non_finite: int, num_threads: int,
                        backend: int) -> list: ...
def timed_normalize_rows(table: object, indices: object,
                         target: float) -> Tuple[float, RowStatsTuple]: ...
def normalize_dense(matrix: object, subset: object, axis: int, mode: int, target: float,
                    p: float, eps: float, non_finite: int, num_threads: int, backend: int,
                    prune_below: float, stream: int) -> MatrixStatsTuple: ...
def normalize_sparse(format: int, rows: int, cols: int, nnz: int, values: object,
                     first: object, second: object, subset: object, axis: int, mode: int,
                     target: float, p: float, eps: float, non_finite: int, num_threads: int,
                     backend: int, prune_below: float) -> MatrixStatsTuple: ...
def optimizer_step(table: object, state: Tuple[object, ...], indices: object, grad: object,
                   numbers: Sequence[float], codes: Sequence[int],
                   stream: int = ...) -> RowStatsTuple: ...
# Each step: (table, state, indices, grad, numbers, codes), as optimizer_step.
def optimizer_step_many(steps: List[Tuple[object, Tuple[object, ...], object, object,
                                          Sequence[float], Sequence[int]]]) -> List[RowStatsTuple]: ...
# The split-phase row operator for sparsenorm.distributed: bytes of int64
# rows and of float64 (scale, sum) pairs.
def row_norm_parts(table: object, indices: object, mode: int, target: float, p: float, eps: float,
                   non_finite: int, num_threads: int, backend: int) -> Tuple[bytes, bytes]: ...
def apply_row_norm_parts(table: object, rows: object, gathered: object, shards: int, mode: int,
                         target: float, p: float, eps: float, non_finite: int, num_threads: int,
                         backend: int) -> RowStatsTuple: ...
def combine_norm_parts(gathered: object, shards: int, p: float) -> bytes: ...
def owned_row_indices(indices: object, global_rows: int, local_rows: int, row_offset: int,
                      cyclic: bool, rank: int, world: int) -> bytes: ...
def matrix_norm_parts(matrix: object, subset: object, axis: int, mode: int, target: float,
                      p: float, eps: float, non_finite: int, num_threads: int, backend: int,
                      prune_below: float) -> bytes: ...
def apply_matrix_norm_parts(matrix: object, subset: object, gathered: object, shards: int,
                            axis: int, mode: int, target: float, p: float, eps: float,
                            non_finite: int, num_threads: int, backend: int,
                            prune_below: float) -> MatrixStatsTuple: ...
# The same on a sparse slice (a CSR block of rows on axis 0, a CSC block of
# columns on axis 1), its arrays passed as to normalize_sparse.
def sparse_matrix_norm_parts(format: int, rows: int, cols: int, nnz: int, values: object,
                             first: object, second: object, subset: object, axis: int,
                             mode: int, target: float, p: float, eps: float, non_finite: int,
                             num_threads: int, backend: int, prune_below: float) -> bytes: ...
def apply_sparse_matrix_norm_parts(format: int, rows: int, cols: int, nnz: int, values: object,
                                   first: object, second: object, subset: object,
                                   gathered: object, shards: int, axis: int, mode: int,
                                   target: float, p: float, eps: float, non_finite: int,
                                   num_threads: int, backend: int,
                                   prune_below: float) -> MatrixStatsTuple: ...
# The optimizer step on a column-sharded table, in split phases, for
# sparsenorm.distributed (include/sparsenorm/sharded_step.h): the first
# six arguments as optimizer_step's (a sparse gradient, CPU arrays), then
# the slice's first global column and the global column count. Bytes of
# int64 rows, float64 sums of squares, float64 (scale, sum) parts.
def column_sharded_step_squares(table: object, state: Tuple[object, ...], indices: object,
                                grad: object, numbers: Sequence[float], codes: Sequence[int],
                                col_offset: int, global_cols: int) -> Tuple[bytes, bytes]: ...
def combine_step_squares(gathered: object, shards: int) -> bytes: ...
def column_sharded_step_parts(table: object, state: Tuple[object, ...], indices: object,
                              grad: object, numbers: Sequence[float], codes: Sequence[int],
                              col_offset: int, global_cols: int,
                              squares: Optional[object]) -> Tuple[bytes, bytes]: ...
def apply_column_sharded_step(table: object, state: Tuple[object, ...], indices: object,
                              grad: object, numbers: Sequence[float], codes: Sequence[int],
                              col_offset: int, global_cols: int, squares: Optional[object],
                              gathered: object, shards: int) -> RowStatsTuple: ...
