"""The optimizer step on a table sharded by columns across processes:
`sparsenorm.distributed`'s ``sgd_``, ``adagrad_``, ``rowwise_adagrad_`` and
``sparse_adam_`` (re-exported there), the split phases of
include/sparsenorm/sharded_step.h with the exchanges of
`sparsenorm.distributed` between them.

Every process holds a block of columns (possibly none) of every row of the
table, the blocks tiling the columns in rank order: its ``table`` shard, its
columns of the elementwise state (Adagrad's ``sum``, Adam's moments) and of
the gradient rows (``values``), and for row-wise Adagrad the whole ``sum``
(shape ``(rows,)``), a replica that every process updates identically.
Every process passes the same indices and keywords.
"""

import math
import struct
from typing import Any, Optional, Tuple

import numpy as np

from . import _core
from ._rows import BackendName, NonFinite, RowStats
from .distributed import (_CLASSES, _TWO_STEP_PROCESSES, _code, _combine_everywhere,
                          _communicator, _digest, _disagreement, _fail_together, _index_array,
                          _shape)
from .optim import (_KIND_ADAGRAD, _KIND_ADAM, _KIND_ROWWISE, _KIND_SGD, DecayMode, _column,
                    _Exported, _options)

__all__ = ["sgd_", "adagrad_", "rowwise_adagrad_", "sparse_adam_"]

# What each process tells the others first: int64 fields (as
# src/mpi/protocol.h's, for this call). The status comes first, where
# distributed._fail_together reads it.
(_STATUS, _DTYPE, _GRAD_DTYPE, _ROWS, _COLS, _COUNT, _INDEX_DIGEST, _OPTIONS_DIGEST, _DISTINCT,
 _FIELDS) = range(10)

_FIELD_NAMES = {
    _DTYPE: "the table dtype", _GRAD_DTYPE: "the gradient dtype", _ROWS: "the table's row count",
    _COUNT: "the index count", _INDEX_DIGEST: "the index list (its digest)",
    _OPTIONS_DIGEST: ("the optimizer options (kind, hyperparameters, step, constraint, rounding, "
                      "seed, non_finite)"),
    _DISTINCT: "the number of distinct rows",
}


def _dtype_digest(array):
    return _digest(str(getattr(array, "dtype", "")).replace("torch.", "").encode())


def _combine_squares_everywhere(c, squares):
    """Row-wise Adagrad's sums of squares of every process, added in rank
    order, the same bits on every process (two steps from
    _TWO_STEP_PROCESSES on, as distributed._combine_everywhere)."""
    n = squares.size
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    if c.size < _TWO_STEP_PROCESSES:
        gathered = np.ascontiguousarray(c.allgather_array(squares))
        return np.frombuffer(_core.combine_step_squares(gathered, c.size), dtype=np.float64)
    bounds = [n * k // c.size for k in range(c.size + 1)]
    chunks = np.ascontiguousarray(c.alltoall_rows(squares.reshape(-1, 1), bounds))
    mine = np.frombuffer(_core.combine_step_squares(chunks, c.size), dtype=np.float64)
    return np.ascontiguousarray(c.allgather_rows(mine.reshape(-1, 1), bounds)).reshape(-1)


def _step(kind, table, states, indices, values, keywords, comm):
    """One collective step. `states` is a sequence of (array, name)."""
    c = _communicator(comm)
    row_wise = kind == _KIND_ROWWISE
    numbers = codes = idx = rows = first = error = None
    shape = (0, 0)

    def arguments():  # a fresh export per phase: the core consumes the capsules
        return _Exported(table, states, idx, values).arguments(numbers, codes)

    try:  # local checks and the first phase; any failure is agreed below
        numbers, codes = _options(kind, **keywords)
        idx = _index_array(indices)
        shape = _shape(table)
        # The first phase does not depend on where the columns lie (the
        # offset keys the last phase's stochastic rounding, the global
        # column count is row-wise Adagrad's divisor in the later phases).
        if row_wise:
            rows_bytes, first_bytes = _core.column_sharded_step_squares(*arguments(), 0, shape[1])
            first = np.frombuffer(first_bytes, dtype=np.float64)
        else:
            rows_bytes, first_bytes = _core.column_sharded_step_parts(*arguments(), 0, shape[1],
                                                                      None)
            first = np.frombuffer(first_bytes, dtype=np.float64).reshape(-1, 2)
        rows = np.frombuffer(rows_bytes, dtype=np.int64)
    except Exception as e:  # noqa: BLE001 - every local failure must reach every process
        error = e
    h = np.zeros(_FIELDS, dtype=np.int64)
    h[_STATUS] = 0 if error is None else _code(error)
    h[_DTYPE] = _dtype_digest(table)
    h[_GRAD_DTYPE] = _dtype_digest(values)
    h[_ROWS], h[_COLS] = shape
    h[_COUNT] = -1 if idx is None else idx.size
    h[_INDEX_DIGEST] = 0 if idx is None else _digest(idx.tobytes())
    if numbers is not None:  # every option that decides the result, not the threads or backend
        h[_OPTIONS_DIGEST] = _digest(struct.pack("<9d8q", *numbers, *codes[:8]))
    h[_DISTINCT] = 0 if rows is None else rows.size
    headers = c.allgather_array(h)
    _fail_together(c, headers, error)
    _disagreement(c, headers, (_OPTIONS_DIGEST, _DTYPE, _GRAD_DTYPE, _ROWS, _COUNT, _INDEX_DIGEST,
                               _DISTINCT), _FIELD_NAMES, (_INDEX_DIGEST, _OPTIONS_DIGEST))
    # The blocks tile the columns in rank order.
    offset = int(headers[:c.rank, _COLS].sum())
    global_cols = int(headers[:, _COLS].sum())

    squares, parts, failed = None, first, 0.0
    if row_wise:
        squares = _combine_squares_everywhere(c, first)
        try:
            _, parts_bytes = _core.column_sharded_step_parts(*arguments(), offset, global_cols,
                                                             squares)
            parts = np.frombuffer(parts_bytes, dtype=np.float64).reshape(-1, 2)
        except Exception as e:  # noqa: BLE001 - reported to every process through the parts
            error, parts, failed = e, np.zeros((rows.size, 2)), math.nan
    # One part more than the rows: NaN where the second phase failed, which
    # the combination spreads to every process.
    parts = np.concatenate([parts, np.array([[failed, 0.0]])])
    gathered, shards = _combine_everywhere(c, parts, numbers[7])
    gathered = gathered.reshape(shards, rows.size + 1, 2)
    if np.isnan(gathered[:, -1, 0]).any():
        found = c.allgather_object(None if error is None else (_code(error), str(error)))
        k = next(k for k, f in enumerate(found) if f is not None)
        raise _CLASSES[found[k][0]](f"rank {k} of {c.size}: {found[k][1]}")
    exported = _Exported(table, states, idx, values)
    stats = _core.apply_column_sharded_step(*exported.arguments(numbers, codes), offset,
                                            global_cols, squares,
                                            np.ascontiguousarray(gathered[:, :-1]), shards)
    exported.mark_modified()
    return RowStats(*stats)


_COMMON_DOC = """
    Collective, over a table sharded by columns: every process of `comm`
    calls it with the same indices and keywords, each with its own block of
    columns (possibly none) of `table`, of `values` and of the elementwise
    state; the blocks tile the columns in rank order. `comm` is an mpi4py
    communicator, a torch.distributed ProcessGroup, or None for
    torch.distributed's default group. The other parameters, and the
    rules, are those of `sparsenorm.optim.{name}`; CPU arrays only.

    Returns the whole call's `RowStats`, the same on every process.

    Results equal the single-process step on the gathered table: bit for
    bit with one process, and for SGD, Adagrad and Adam without a
    constraint on any split (their rules are per element; stochastic
    rounding keys on the global column). Row-wise Adagrad's sum of squares
    and the constraint's norm are combined from the processes' parts in
    rank order (float64): every process holds the same bits and decides
    every row alike, within a few ulps of the single-process values, and
    bit-for-bit reproducibly for a fixed process count and split. A row
    whose gradient, update or state holds NaN or infinity in any process's
    columns is left, and counted, on every process.

    Raises the exceptions of `sparsenorm.optim.{name}` on every process
    alike (messages starting ``"rank r of n: "``), or ValueError when the
    processes disagree on shapes, dtypes, indices or options (every option
    that decides the result); then no process has modified anything.
    docs/DISTRIBUTED.md describes the protocol: one exchange of 16 bytes
    per distinct row per process, and for row-wise Adagrad one more of 8.
"""


def sgd_(table: Any, indices: Any, values: Any, *, lr: float, weight_decay: float = 0.0,
         weight_decay_mode: DecayMode = "l2", step: int = 1, max_norm: Optional[float] = None,
         constant_norm: Optional[float] = None, norm_type: float = 2.0, norm_eps: float = 1e-7,
         stochastic_rounding: bool = False, seed: int = 0, non_finite: NonFinite = "skip",
         num_threads: Optional[int] = None, backend: BackendName = "auto",
         comm: Any = None) -> RowStats:
    keywords = dict(lr=lr, weight_decay=weight_decay, weight_decay_mode=weight_decay_mode,
                    step=step, max_norm=max_norm, constant_norm=constant_norm,
                    norm_type=norm_type, norm_eps=norm_eps,
                    stochastic_rounding=stochastic_rounding, seed=seed, non_finite=non_finite,
                    num_threads=num_threads, backend=backend)
    return _step(_KIND_SGD, table, (), indices, values, keywords, comm)


def adagrad_(table: Any, sum: Any, indices: Any, values: Any, *, lr: float = 0.01,
             lr_decay: float = 0.0, weight_decay: float = 0.0, weight_decay_mode: DecayMode = "l2",
             eps: float = 1e-10, step: int = 1, caffe2_sign: bool = False,
             max_norm: Optional[float] = None, constant_norm: Optional[float] = None,
             norm_type: float = 2.0, norm_eps: float = 1e-7, stochastic_rounding: bool = False,
             seed: int = 0, non_finite: NonFinite = "skip", num_threads: Optional[int] = None,
             backend: BackendName = "auto", comm: Any = None) -> RowStats:
    keywords = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                    weight_decay_mode=weight_decay_mode, step=step, caffe2_sign=caffe2_sign,
                    max_norm=max_norm, constant_norm=constant_norm, norm_type=norm_type,
                    norm_eps=norm_eps, stochastic_rounding=stochastic_rounding, seed=seed,
                    non_finite=non_finite, num_threads=num_threads, backend=backend)
    return _step(_KIND_ADAGRAD, table, ((sum, "sum"),), indices, values, keywords, comm)


def rowwise_adagrad_(table: Any, sum: Any, indices: Any, values: Any, *, lr: float = 0.01,
                     eps: float = 1e-8, weight_decay: float = 0.0,
                     weight_decay_mode: DecayMode = "none", step: int = 1,
                     max_norm: Optional[float] = None, constant_norm: Optional[float] = None,
                     norm_type: float = 2.0, norm_eps: float = 1e-7,
                     stochastic_rounding: bool = False, seed: int = 0,
                     non_finite: NonFinite = "skip", num_threads: Optional[int] = None,
                     backend: BackendName = "auto", comm: Any = None) -> RowStats:
    keywords = dict(lr=lr, eps=eps, weight_decay=weight_decay,
                    weight_decay_mode=weight_decay_mode, step=step, max_norm=max_norm,
                    constant_norm=constant_norm, norm_type=norm_type, norm_eps=norm_eps,
                    stochastic_rounding=stochastic_rounding, seed=seed, non_finite=non_finite,
                    num_threads=num_threads, backend=backend)
    return _step(_KIND_ROWWISE, table, ((_column(sum, "sum"), "sum"),), indices, values,
                 keywords, comm)


def sparse_adam_(table: Any, exp_avg: Any, exp_avg_sq: Any, indices: Any, values: Any, *,
                 lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, weight_decay_mode: DecayMode = "l2", step: int = 1,
                 max_norm: Optional[float] = None, constant_norm: Optional[float] = None,
                 norm_type: float = 2.0, norm_eps: float = 1e-7, stochastic_rounding: bool = False,
                 seed: int = 0, non_finite: NonFinite = "skip", num_threads: Optional[int] = None,
                 backend: BackendName = "auto", comm: Any = None) -> RowStats:
    keywords = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                    weight_decay_mode=weight_decay_mode, step=step, max_norm=max_norm,
                    constant_norm=constant_norm, norm_type=norm_type, norm_eps=norm_eps,
                    stochastic_rounding=stochastic_rounding, seed=seed, non_finite=non_finite,
                    num_threads=num_threads, backend=backend)
    return _step(_KIND_ADAM, table, ((exp_avg, "exp_avg"), (exp_avg_sq, "exp_avg_sq")), indices,
                 values, keywords, comm)


sgd_.__doc__ = ("""One SGD step on this process's columns of a column-sharded table, in place.
""" + _COMMON_DOC.format(name="sgd_"))
adagrad_.__doc__ = ("""One Adagrad step on this process's columns of a column-sharded table, in
    place; `sum` holds this process's columns of the accumulators.
""" + _COMMON_DOC.format(name="adagrad_"))
rowwise_adagrad_.__doc__ = ("""One row-wise Adagrad step on this process's columns of a column-sharded
    table, in place. `sum` (shape ``(rows,)``) is the whole per-row
    accumulator, a replica every process keeps and updates identically;
    the mean of the squares divides by the global column count (the sum of
    the processes' column counts).
""" + _COMMON_DOC.format(name="rowwise_adagrad_"))
sparse_adam_.__doc__ = ("""One lazy Adam step on this process's columns of a column-sharded table,
    in place; `exp_avg` and `exp_avg_sq` hold this process's columns of the
    moments.
""" + _COMMON_DOC.format(name="sparse_adam_"))
