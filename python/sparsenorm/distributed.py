"""The row operator on tables, and the matrix normalization on dense and
sparse matrices, sharded across processes.

``normalize_rows_(shard, indices, ..., layout=, comm=)`` is `normalize_rows_`
on one shard of a table that the processes of a communicator hold together;
``normalize(X_local, ..., axis=, comm=)`` is `normalize` on one block of a
matrix (a block of rows on axis 0, of columns on axis 1; SciPy CSR row
blocks on axis 0, CSC column blocks on axis 1).
``sgd_``, ``adagrad_``, ``rowwise_adagrad_`` and ``sparse_adam_`` are the
optimizer steps of `sparsenorm.optim` on a table sharded by columns
(``comm=`` as here; their docstrings say what each process holds).
The partial norms move through the communicator's own Python API, so this
module needs no MPI of its own:

- an mpi4py communicator (``comm=MPI.COMM_WORLD``): ``Allgather`` (and from
  4 processes ``Alltoallv`` and ``Allgatherv``) on NumPy buffers,
  ``allgather`` for the rare error message;
- a torch.distributed process group (``comm=group``), or ``comm=None`` for
  torch's default group once ``torch.distributed.init_process_group`` has
  run: ``all_gather`` (and from 4 processes ``all_to_all_single``) on
  tensors (CPU tensors with gloo; CUDA tensors on the current device with
  NCCL).

Every process must call with the same options and the same global index
list; each passes its own shard. Layouts:

``layout="column"``
    Every process holds some columns (possibly none) of every row. The
    partial norms of the distinct touched rows are gathered from every
    process and combined in rank order on each, so all hold bit-identical
    norms and decide every row alike; then each scales its own columns.
``layout="row"``
    Every process holds whole rows: a contiguous block of global rows
    starting at `row_offset`, or, with ``cyclic=True``, the rows ``g`` with
    ``g % size == rank`` (global row ``g`` is local row ``g // size``). The
    global row count is the sum of the shards' row counts, agreed between
    the processes; each normalizes the rows it owns. No data moves.

Before anything is exchanged, the processes compare their shapes, options
and index lists (count and digest). Any process's bad argument, any
disagreement, and (with ``non_finite='error'``) NaN or infinity in a touched
row make every process raise the same exception, its message naming the
rank that found it, and no process writes anything. docs/DISTRIBUTED.md
describes the protocol.
"""

import hashlib
import operator
import struct
import sys
from typing import Any, Literal, Optional

import numpy as np

from . import _arrays, _core
from ._matrix import (_NORMS, MatrixStats, _is_scipy_sparse, _sparse_capsules, _sparse_target,
                      _trim)
from ._rows import (_BACKENDS, _CONSTANT_NORM, _MAX_NORM, _NON_FINITE, NonFinite, BackendName,
                    RowStats, choice, real, threads)

__all__ = ["normalize", "normalize_rows_", "sgd_", "adagrad_", "rowwise_adagrad_", "sparse_adam_"]

_LAYOUTS = {"column": 0, "row": 1}

# What each process tells the others first: int64 fields (as in
# src/mpi/sharded.cc).
(_STATUS, _DTYPE, _ROWS, _COLS, _ROW_OFFSET, _CYCLIC, _COUNT, _INDEX_DIGEST, _OPTIONS_DIGEST,
 _DISTINCT, _FIELDS) = range(11)

_FIELD_NAMES = {
    _DTYPE: "the dtype", _ROWS: "the table's row count (a matrix's vector count)", _COLS: "the table's column count",
    _CYCLIC: "cyclic", _COUNT: "the index count", _INDEX_DIGEST: "the index list (its digest)",
    _OPTIONS_DIGEST: "the options (max_norm, p, eps, non_finite)",
    _DISTINCT: "the number of parts (distinct rows or vectors)",
}

# Exceptions as codes, so that every process raises the same kind.
_ERRORS = [(_core.NonFiniteError, 4), (IndexError, 2), (TypeError, 3), (MemoryError, 5),
           (ValueError, 1)]
_CLASSES = {1: ValueError, 2: IndexError, 3: TypeError, 4: _core.NonFiniteError,
            5: MemoryError, 6: RuntimeError}


def _code(error):
    for cls, code in _ERRORS:
        if isinstance(error, cls):
            return code
    return 6


def _digest(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little", signed=True)


class _Mpi4py:
    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def allgather_array(self, a):
        out = np.empty((self.size,) + a.shape, dtype=a.dtype)
        self.comm.Allgather(np.ascontiguousarray(a), out)
        return out

    def allgather_object(self, obj):
        return self.comm.allgather(obj)

    def alltoall_rows(self, a, bounds):
        """Rows [bounds[k], bounds[k+1]) of `a` to process k; from every
        process the rows of this one's chunk, stacked in rank order."""
        m = bounds[self.rank + 1] - bounds[self.rank]
        width = a.shape[1]
        out = np.empty((self.size * m, width), dtype=a.dtype)
        send_counts = [(bounds[k + 1] - bounds[k]) * width for k in range(self.size)]
        send_displs = [bounds[k] * width for k in range(self.size)]
        self.comm.Alltoallv([np.ascontiguousarray(a), (send_counts, send_displs)],
                            [out, ([m * width] * self.size,
                                   [k * m * width for k in range(self.size)])])
        return out

    def allgather_rows(self, chunk, bounds):
        """Every process's chunk of rows, concatenated in rank order."""
        width = chunk.shape[1]
        out = np.empty((bounds[-1], width), dtype=chunk.dtype)
        counts = [(bounds[k + 1] - bounds[k]) * width for k in range(self.size)]
        displs = [bounds[k] * width for k in range(self.size)]
        self.comm.Allgatherv(np.ascontiguousarray(chunk), [out, (counts, displs)])
        return out


class _Torch:
    def __init__(self, dist, group):
        self.dist = dist
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self.torch = sys.modules["torch"]
        self.device = self.torch.device("cpu")
        if dist.get_backend(group) == "nccl":  # NCCL moves CUDA tensors only
            self.device = self.torch.device("cuda", self.torch.cuda.current_device())

    def allgather_array(self, a):
        t = self.torch.from_numpy(np.array(a, copy=True)).to(self.device)  # writable
        out = [self.torch.empty_like(t) for _ in range(self.size)]
        self.dist.all_gather(out, t, group=self.group)
        return np.stack([o.cpu().numpy() for o in out])

    def allgather_object(self, obj):
        out = [None] * self.size
        self.dist.all_gather_object(out, obj, group=self.group)
        return out

    def alltoall_rows(self, a, bounds):
        m = bounds[self.rank + 1] - bounds[self.rank]
        t = self.torch.from_numpy(np.array(a, copy=True)).to(self.device)
        out = self.torch.empty((self.size * m,) + tuple(t.shape[1:]), dtype=t.dtype,
                               device=self.device)
        self.dist.all_to_all_single(out, t, output_split_sizes=[m] * self.size,
                                    input_split_sizes=[bounds[k + 1] - bounds[k]
                                                       for k in range(self.size)],
                                    group=self.group)
        return out.cpu().numpy()

    def allgather_rows(self, chunk, bounds):
        # all_gather takes equal sizes: chunks padded to the longest.
        longest = max(bounds[k + 1] - bounds[k] for k in range(self.size))
        padded = np.zeros((longest,) + chunk.shape[1:], dtype=chunk.dtype)
        padded[:chunk.shape[0]] = chunk
        gathered = self.allgather_array(padded)
        return np.concatenate([gathered[k, :bounds[k + 1] - bounds[k]] for k in range(self.size)])


# From this many processes on, parts are combined in two steps, as in
# src/mpi/sharded.cc: each process combines a chunk of the rows from every
# process's parts (all-to-all), then the combined chunks are gathered. Each
# process then moves about 2 x 16 bytes per row instead of (size - 1) x 16;
# every row is still combined once, in rank order, so the bits are those of
# the one-step all-gather.
_TWO_STEP_PROCESSES = 4


def _combine_everywhere(c, parts, p):
    """(gathered, shards) for the apply bindings: every process's parts
    in rank order, or (from _TWO_STEP_PROCESSES on) the combined parts as a
    single shard, which the core's combination leaves as they are."""
    n = parts.shape[0]
    if n == 0:
        return np.zeros((c.size, 0, 2), dtype=np.float64), c.size
    if c.size < _TWO_STEP_PROCESSES:
        return np.ascontiguousarray(c.allgather_array(parts)), c.size
    bounds = [n * k // c.size for k in range(c.size + 1)]
    chunks = np.ascontiguousarray(c.alltoall_rows(parts, bounds))
    mine = np.frombuffer(_core.combine_norm_parts(chunks, c.size, p),
                         dtype=np.float64).reshape(-1, 2)
    return np.ascontiguousarray(c.allgather_rows(mine, bounds)), 1


def _communicator(comm):
    if comm is None:
        torch = sys.modules.get("torch")  # not imported: no group can be initialized
        dist = getattr(torch, "distributed", None) if torch is not None else None
        if dist is None or not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "comm=None uses torch.distributed's default process group, but "
                "torch.distributed is not initialized in this process: call "
                "torch.distributed.init_process_group first, or pass comm= an mpi4py "
                "communicator or a torch.distributed ProcessGroup.")
        return _Torch(dist, None)
    module = type(comm).__module__.split(".")[0]
    if module == "mpi4py":
        return _Mpi4py(comm)
    if module == "torch":
        dist = sys.modules["torch"].distributed
        if isinstance(comm, dist.ProcessGroup):
            return _Torch(dist, comm)
    raise TypeError(f"comm must be an mpi4py communicator, a torch.distributed ProcessGroup or "
                    f"None; got {_arrays.describe(comm)}.")


def _index_array(indices):
    """The global index list as a contiguous int64 NumPy array."""
    if type(indices).__module__.split(".")[0] == "torch":
        if indices.device.type != "cpu":
            raise TypeError(f"indices is on {indices.device}; sparsenorm.distributed takes "
                            "indices in CPU memory.")
        indices = indices.detach().numpy()
    if isinstance(indices, (float, complex, str, bytes)):
        raise TypeError(f"indices must be an integer array or a sequence of integers; got "
                        f"{_arrays.describe(indices)}.")
    a = np.asarray(indices)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"indices must be an integer array or a sequence of integers; got "
                        f"{_arrays.describe(indices)} holding {a.dtype} values.")
    a = a.reshape(-1)
    if a.dtype.kind == "u" and a.max() > np.iinfo(np.int64).max:
        position = int(np.argmax(a > np.iinfo(np.int64).max))
        raise IndexError(f"indices[{position}] = {a[position]} is out of range: it does not fit "
                         "in a 64-bit index.")
    return np.ascontiguousarray(a, dtype=np.int64)


def _shape(shard):
    shape = tuple(getattr(shard, "shape", ()))
    if len(shape) != 2:
        raise ValueError(f"shard must be a 2-D table; got {_arrays.describe(shard)}.")
    return int(shape[0]), int(shape[1])


def _fail_together(c, headers, error):
    """Raises on every process the error of the first one whose checks failed."""
    failing = [k for k in range(c.size) if headers[k, _STATUS] != 0]
    if not failing:
        return
    k = failing[0]
    messages = c.allgather_object(str(error) if error is not None else None)
    raise _CLASSES[int(headers[k, _STATUS])](f"rank {k} of {c.size}: {messages[k]}")


def _disagreement(c, headers, fields, names=None, digests=(_INDEX_DIGEST, _OPTIONS_DIGEST)):
    """Raises on the first field that differs from rank 0's; `names` and
    `digests` describe another header layout (the optimizer step's)."""
    names = _FIELD_NAMES if names is None else names
    for f in fields:
        for k in range(1, c.size):
            a, b = int(headers[0, f]), int(headers[k, f])
            if a == b:
                continue
            detail = (f": rank {k} differs from rank 0" if f in digests
                      else f": rank 0 has {a}, rank {k} has {b}")
            raise ValueError(f"ranks disagree on {names[f]}{detail}. Every rank must make "
                             "the same call on its own shard; nothing was modified on any rank.")


def _header(status, shard, idx, options):
    h = np.zeros(_FIELDS, dtype=np.int64)
    h[_STATUS] = status
    h[_DTYPE] = _digest(str(getattr(shard, "dtype", "")).replace("torch.", "").encode())
    h[_COUNT] = idx.size if idx is not None else -1
    h[_INDEX_DIGEST] = _digest(idx.tobytes()) if idx is not None else 0
    h[_OPTIONS_DIGEST] = _digest(struct.pack("<dddi", *options[1:4], options[4]))
    return h


def _global_rows(c, headers, cyclic):
    """The global row count, after checking that the shards tile it."""
    rows = [int(headers[k, _ROWS]) for k in range(c.size)]
    total = sum(rows)
    if cyclic:
        for k in range(c.size):
            owned = (total - k + c.size - 1) // c.size if total > k else 0
            if rows[k] != owned:
                raise ValueError(f"rank {k} holds {rows[k]} rows but owns {owned} of the {total} "
                                 f"global rows in a cyclic layout (rows g with g % {c.size} == "
                                 f"{k}); nothing was modified on any rank.")
        return total
    blocks = sorted((int(headers[k, _ROW_OFFSET]), rows[k], k) for k in range(c.size))
    following = 0
    for offset, count, k in blocks:
        if count == 0 and 0 <= offset <= total:
            continue  # an empty block owns nothing
        if offset != following:
            raise ValueError(f"rank {k} holds rows [{offset}, {offset + count}) but the ranks' "
                             f"blocks must tile [0, {total}) without gaps or overlaps, and the row "
                             f"after the previous block is {following}; nothing was modified on "
                             "any rank.")
        following += count
    return total


Layout = Literal["column", "row"]


def normalize_rows_(shard: Any, indices: Any, *, max_norm: float = 1.0, p: float = 2.0,
                    eps: float = 1e-12, layout: Layout = "column", row_offset: int = 0,
                    cyclic: bool = False, comm: Any = None, non_finite: NonFinite = "skip",
                    num_threads: Optional[int] = None,
                    backend: BackendName = "auto") -> RowStats:
    """`sparsenorm.normalize_rows_` on one shard of a table held by many processes.

    Collective: every process of `comm` calls it with the same indices and
    options, each with its own shard.

    Parameters
    ----------
    shard : array of shape (rows, cols)
        This process's part of the table, in CPU memory (a NumPy array, a
        PyTorch tensor, any DLPack array of float16, bfloat16, float32 or
        float64), modified in place. With ``layout="column"`` every process
        has the same row count and its own columns (possibly none); with
        ``layout="row"`` its own rows (possibly none) and the same columns.
    indices : array or sequence of int
        The global row numbers, the same on every process.
    max_norm, p, eps, non_finite, num_threads, backend
        As in `sparsenorm.normalize_rows_`.
    layout : {'column', 'row'}, default 'column'
        How the table is sharded (module docstring).
    row_offset : int, default 0
        ``layout="row"``: the global row of this shard's first row.
    cyclic : bool, default False
        ``layout="row"``: global row ``g`` lives on rank ``g % size``.
    comm : mpi4py communicator, torch.distributed ProcessGroup or None
        None: torch.distributed's default group, which must be initialized.

    Returns
    -------
    RowStats
        ``layout="column"``: the whole call's, the same on every process.
        ``layout="row"``: this shard's rows (indices_seen counts the
        positions of the list this shard owns).

    Raises
    ------
    The exceptions of `sparsenorm.normalize_rows_`, on every process alike,
    with messages starting ``"rank r of n: "`` for what one process found;
    ValueError when the processes disagree on shapes, options or indices.
    When an exception is raised, no process has modified anything.

    Notes
    -----
    The column layout's norms are combined from per-process partial norms
    in float64: they equal the single-process norms within a few float32
    ulps (float64 tables: float64 ulps), and with one process exactly;
    results are bit-for-bit reproducible for a fixed process count.
    The row layout gives the single-process result bit for bit.
    """
    lay = choice(layout, _LAYOUTS, "layout")
    options = (_MAX_NORM, real(max_norm, "max_norm"), real(p, "p"), real(eps, "eps"),
               choice(non_finite, _NON_FINITE, "non_finite"), threads(num_threads),
               choice(backend, _BACKENDS, "backend"))
    c = _communicator(comm)
    if lay == _LAYOUTS["column"]:
        return _column_sharded(c, shard, indices, options)
    return _row_sharded(c, shard, indices, options, row_offset, bool(cyclic))


def _column_sharded(c, shard, indices, options):
    idx, rows, parts, error = None, None, None, None
    shard_rows = 0
    try:  # local checks and the parts; any failure is agreed below
        idx = _index_array(indices)
        shard_rows = _shape(shard)[0]
        exported = _arrays.export_target(shard, "shard")
        rows_bytes, parts_bytes = _core.row_norm_parts(
            exported.capsule, _arrays.export_indices(idx, "indices"), *options)
        rows = np.frombuffer(rows_bytes, dtype=np.int64)
        parts = np.frombuffer(parts_bytes, dtype=np.float64).reshape(-1, 2)
    except Exception as e:  # noqa: BLE001 - every local failure must reach every process
        error = e
    h = _header(0 if error is None else _code(error), shard, idx, options)
    if error is None:
        h[_ROWS] = shard_rows
        h[_DISTINCT] = rows.size
    headers = c.allgather_array(h)
    _fail_together(c, headers, error)
    _disagreement(c, headers, (_OPTIONS_DIGEST, _DTYPE, _ROWS, _COUNT, _INDEX_DIGEST, _DISTINCT))

    # The parts of the touched rows from every process, combined in rank
    # order, the same bits on every process.
    gathered, shards = _combine_everywhere(c, parts, options[2])
    exported = _arrays.export_target(shard, "shard")
    stats = _core.apply_row_norm_parts(exported.capsule, rows, gathered, shards, *options)
    exported.mark_modified()
    return RowStats(idx.size, *stats[1:])


def _row_sharded(c, shard, indices, options, row_offset, cyclic):
    idx, error = None, None
    rows = cols = offset = 0
    try:
        idx = _index_array(indices)
        rows, cols = _shape(shard)
        offset = 0 if cyclic else operator.index(row_offset)
        if offset < 0:
            raise ValueError(f"row_offset = {offset} is negative.")
        # Options and the shard's layout, reading no row.
        exported = _arrays.export_target(shard, "shard")
        _core.row_norm_parts(exported.capsule,
                             _arrays.export_indices(np.zeros(0, np.int64), "indices"), *options)
    except Exception as e:  # noqa: BLE001 - every local failure must reach every process
        error = e
    h = _header(0 if error is None else _code(error), shard, idx, options)
    h[_ROWS], h[_COLS], h[_ROW_OFFSET], h[_CYCLIC] = rows, cols, offset, int(cyclic)
    headers = c.allgather_array(h)
    _fail_together(c, headers, error)
    _disagreement(c, headers, (_OPTIONS_DIGEST, _DTYPE, _COLS, _CYCLIC, _COUNT, _INDEX_DIGEST))
    global_rows = _global_rows(c, headers, cyclic)

    # The rows this process owns; NaN or infinity in them (non_finite='error')
    # only the owner sees, hence one more agreement.
    local, error = None, None
    try:
        local = np.frombuffer(
            _core.owned_row_indices(_arrays.export_indices(idx, "indices"), global_rows, rows,
                                    offset, cyclic, c.rank, c.size), dtype=np.int64).copy()
        if options[4] == _NON_FINITE["error"] and local.size > 0:
            exported = _arrays.export_target(shard, "shard")
            touched, parts = _core.row_norm_parts(
                exported.capsule, _arrays.export_indices(local, "indices"), *options)
            touched = np.frombuffer(touched, dtype=np.int64)
            bad = np.isnan(np.frombuffer(parts, dtype=np.float64)[0::2])
            if bad.any():
                r = int(touched[np.argmax(bad)])
                g = r * c.size + c.rank if cyclic else r + offset
                raise _core.NonFiniteError(
                    f"global row {g} (local row {r}) holds NaN or infinity and "
                    "non_finite='error'; nothing was modified on any rank.")
    except Exception as e:  # noqa: BLE001
        error = e
    status = np.array([0 if error is None else _code(error)], dtype=np.int64)
    statuses = c.allgather_array(status)
    _fail_together(c, statuses.reshape(c.size, 1), error)

    exported = _arrays.export_target(shard, "shard")
    stats = _core.normalize_rows(exported.capsule,
                                 _arrays.export_indices(local, "indices", shard, exported),
                                 *options, -1)
    exported.mark_modified()
    return RowStats(*stats)


def normalize(X_local: Any, norm: Literal["l1", "l2", "max"] = "l2", *, axis: int = 0,
              copy: bool = False, max_norm: Optional[float] = None, eps: float = 0.0,
              subset: Any = None, prune_below: float = 0.0, non_finite: NonFinite = "skip",
              num_threads: Optional[int] = None, backend: BackendName = "auto", comm: Any = None,
              return_stats: bool = False):
    """`sparsenorm.normalize` on one block of a matrix held by many processes.

    Collective: every process of `comm` calls it with the same options, each
    with its own block. On axis 0 (each column ``X[:, j] / ||X[:, j]||``)
    every process holds a block of rows (possibly none) of every column; on
    axis 1 a block of columns of every row. The partial norms of every
    column (row), or of those `subset` names, are gathered from every
    process and combined in rank order on each, so every process decides
    every vector alike; then each scales (and prunes) its own block.

    Parameters are those of `sparsenorm.normalize` plus `comm` (as in
    `normalize_rows_`). `X_local` is a dense NumPy array or CPU PyTorch
    tensor of float16, bfloat16, float32 or float64, or a SciPy sparse
    block: a CSR block of rows on axis 0, a CSC block of columns on axis 1
    (``csr_matrix``/``csr_array``, ``csc_matrix``/``csc_array``). A CSR
    block on axis 1 (CSC on axis 0) holds its vectors whole, so
    `sparsenorm.normalize` on it needs no other process; that, like a COO
    block, raises TypeError on every process. A sparse block keeps its
    structure and its values are scaled in place; with `prune_below` the
    pruned block is a new matrix and `X_local` is left as it was, as in
    `sparsenorm.normalize`.

    Returns `X_local` (or its copy with ``copy=True``, or the pruned sparse
    block), and with ``return_stats=True`` a `MatrixStats` whose vector
    counts are the whole matrix's and whose pruned and nnz counts are this
    block's.

    Raises the exceptions of `sparsenorm.normalize` on every process alike
    (messages starting ``"rank r of n: "`` for what one process found), or
    ValueError when the processes disagree on shapes or options; then no
    process has modified anything.
    """
    p = choice(norm, _NORMS, "norm") if isinstance(norm, str) else real(norm, "norm")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be 0 or 1; got {axis!r}.") from None
    mode, target = (_CONSTANT_NORM, 1.0) if max_norm is None else (_MAX_NORM,
                                                                    real(max_norm, "max_norm"))
    options = (axis, mode, target, p, real(eps, "eps"),
               choice(non_finite, _NON_FINITE, "non_finite"), threads(num_threads),
               choice(backend, _BACKENDS, "backend"), real(prune_below, "prune_below"))
    c = _communicator(comm)
    sparse = _is_scipy_sparse(X_local)
    pruning = options[8] > 0
    Y, arrays = X_local, None
    if copy and not sparse:
        Y = X_local.detach().clone() if _arrays._owner(X_local) == "torch" else X_local.copy()

    sub, parts, error = None, None, None
    vectors = 0
    try:
        if sparse:
            # As sparsenorm.normalize: a copy with copy=True or when pruning,
            # whose arrays shrink (X_local is then left as it was).
            Y, arrays = _sparse_target(X_local, copy, pruning)
        rows, cols = _shape(Y)
        vectors = cols if axis == 0 else rows
        sub = None if subset is None else _index_array(subset)
        if sparse:
            parts_bytes = _core.sparse_matrix_norm_parts(*_sparse_capsules(arrays, False, sub),
                                                         *options)
        else:
            exported = _arrays.export_target(Y, "X")
            parts_bytes = _core.matrix_norm_parts(
                exported.capsule, None if sub is None else _arrays.export_indices(sub, "subset"),
                *options)
        parts = np.frombuffer(parts_bytes, dtype=np.float64).reshape(-1, 2)
    except Exception as e:  # noqa: BLE001 - every local failure must reach every process
        error = e
    h = np.zeros(_FIELDS, dtype=np.int64)
    h[_STATUS] = 0 if error is None else _code(error)
    h[_DTYPE] = _digest(str(getattr(Y, "dtype", "")).replace("torch.", "").encode())
    h[_ROWS] = vectors
    h[_OPTIONS_DIGEST] = _digest(struct.pack("<iidddid", axis, mode, target, p, options[4],
                                             options[5], options[8]) +
                                 (b"" if sub is None else b"subset" + sub.tobytes()))
    h[_DISTINCT] = 0 if parts is None else parts.shape[0]
    headers = c.allgather_array(h)
    _fail_together(c, headers, error)
    _disagreement(c, headers, (_OPTIONS_DIGEST, _DTYPE, _ROWS, _DISTINCT))
    gathered, shards = _combine_everywhere(c, parts, p)
    if sparse:
        stats = MatrixStats(*_core.apply_sparse_matrix_norm_parts(
            *_sparse_capsules(arrays, pruning, sub), gathered, shards, *options))
        if pruning:
            _trim(Y, stats)
        return (Y, stats) if return_stats else Y
    exported = _arrays.export_target(Y, "X")
    stats = _core.apply_matrix_norm_parts(
        exported.capsule, None if sub is None else _arrays.export_indices(sub, "subset"),
        gathered, shards, *options)
    exported.mark_modified()
    return (Y, MatrixStats(*stats)) if return_stats else Y


# ---------------------------------------------------------------------------
# The optimizer step on a column-sharded table (sparsenorm/_sharded_step.py),
# which builds on the helpers above.
from ._sharded_step import adagrad_, rowwise_adagrad_, sgd_, sparse_adam_  # noqa: E402
