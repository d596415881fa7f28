"""Whole-matrix normalization: sparsenorm.normalize, for dense and scipy.sparse matrices."""

import math
import operator
from typing import Any, Literal, NamedTuple, Optional, Tuple, Union

import numpy as np

from . import _arrays, _core
from ._rows import (_BACKENDS, _CONSTANT_NORM, _MAX_NORM, _NON_FINITE, BackendName, NonFinite,
                    choice, real, threads)

_NORMS = {"l1": 1.0, "l2": 2.0, "max": math.inf}
_FORMATS = {"csr": 0, "csc": 1, "coo": 2}


class MatrixStats(NamedTuple):
    """What one call of `normalize` did."""

    vectors: int
    """Columns (axis 0) or rows (axis 1) considered."""
    vectors_scaled: int
    """Vectors whose values were rescaled."""
    zero_vectors: int
    """Vectors of norm 0, left as they were."""
    nonfinite_vectors: int
    """Vectors holding NaN or infinity, left as they were."""
    pruned: int
    """Values set to zero (dense) or entries removed (sparse) by pruning."""
    nnz_before: int
    """Stored entries before the call (dense: rows * cols)."""
    nnz_after: int
    """Stored entries after the call."""


def _is_scipy_sparse(X):
    return type(X).__module__.startswith("scipy.sparse")


def _copy_dense(X):
    if isinstance(X, np.ndarray):
        return X.copy()
    if _arrays._owner(X) == "torch":
        return X.detach().clone()
    if hasattr(X, "copy"):
        return X.copy()
    raise TypeError(f"X ({_arrays.describe(X)}) has no copy() method; pass copy=False.")


def _dense(X, subset, options):
    exported = _arrays.export_target(X, "X")
    subset_capsule = None if subset is None else _arrays.export_indices(subset, "subset", X,
                                                                        exported)
    stream = exported.stream if exported.stream is not None else -1
    stats = _core.normalize_dense(exported.capsule, subset_capsule, *options, stream)
    exported.mark_modified()
    return MatrixStats(*stats)


def _sparse_target(X, copy, pruning):
    """The matrix to work on (X, or its copy) and its arrays as the core takes
    them: (format code, rows, cols, nnz, values, first, second, names), first
    and second being indptr and indices (CSR, CSC) or row and col (COO)."""
    fmt = getattr(X, "format", None)
    if fmt not in _FORMATS:
        raise TypeError(f"X is a {_arrays.describe(X)} in {fmt!r} format; sparsenorm normalizes "
                        "CSR, CSC and COO matrices in place. Convert it first, for example "
                        "with X.tocsr().")
    # Pruning shrinks the arrays, which a SciPy matrix cannot do in place:
    # the pruned matrix is always a new one, and X is left as it was.
    Y = X.copy() if copy or pruning else X
    rows, cols = Y.shape
    coo = fmt == "coo"
    values = Y.data
    if coo:
        first, second, names = Y.row, Y.col, ("X.row", "X.col")
        nnz = values.shape[0]
    else:
        first, second, names = Y.indptr, Y.indices, ("X.indptr", "X.indices")
        nnz = int(first[-1]) if first.size else values.shape[0]
        values, second = values[:nnz], second[:nnz]  # SciPy tolerates longer arrays
    if first.dtype != second.dtype:
        # SciPy may mix int32 and int64 index arrays; the core takes one type.
        # Widening copies an array the core only reads, unless Y is already a
        # copy of X's (pruning), whose arrays then take the widened ones.
        common = np.promote_types(first.dtype, second.dtype)
        first, second = first.astype(common, copy=False), second.astype(common, copy=False)
        if Y is not X:
            if coo:
                Y.row, Y.col = first, second
            else:
                Y.indptr, Y.indices = first, second
    return Y, (_FORMATS[fmt], rows, cols, nnz, values, first, second, names)


def _sparse_capsules(arrays, pruning, subset):
    """The core's leading arguments for one call on `arrays` (_sparse_target):
    the index arrays are exported writable only when pruning compacts them."""
    fmt, rows, cols, nnz, values, first, second, names = arrays
    values_export = _arrays.export_target(values, "X.data")
    export_index = _arrays.export_read_only if not pruning else (
        lambda a, name: _arrays.export_target(a, name, values=False).capsule)
    subset_capsule = None if subset is None else _arrays.export_indices(subset, "subset")
    return (fmt, rows, cols, nnz, values_export.capsule, export_index(first, names[0]),
            export_index(second, names[1]), subset_capsule)


def _trim(Y, stats):
    """After pruning: Y's arrays cut to the entries kept."""
    k = stats.nnz_after
    Y.data = Y.data[:k]
    if Y.format == "coo":
        Y.row, Y.col = Y.row[:k], Y.col[:k]
    else:
        Y.indices = Y.indices[:k]


def _sparse(X, copy, subset, options):
    pruning = options[-1] > 0
    Y, arrays = _sparse_target(X, copy, pruning)
    stats = MatrixStats(*_core.normalize_sparse(*_sparse_capsules(arrays, pruning, subset),
                                                *options))
    if pruning:
        _trim(Y, stats)
    return Y, stats


def normalize(X: Any, norm: Literal["l1", "l2", "max"] = "l2", *, axis: int = 0,
              copy: bool = False, max_norm: Optional[float] = None, eps: float = 0.0,
              subset: Any = None, prune_below: float = 0.0, non_finite: NonFinite = "skip",
              num_threads: Optional[int] = None, backend: BackendName = "auto",
              return_stats: bool = False) -> Union[Any, Tuple[Any, MatrixStats]]:
    """Scale every column (axis 0) or row (axis 1) of a matrix to unit norm.

    Like ``sklearn.preprocessing.normalize``, for dense arrays and SciPy
    CSR, CSC and COO matrices, but in place and on every core. For axis 0::

        for each column j (or each j in subset):
            n = ||X[:, j]||_p = (sum_i |X[i, j]|**p) ** (1/p)    (max_i |X[i, j]| for p = inf)
            if n > 0:
                X[:, j] *= 1 / (n + eps)              # max_norm=None (the default)
            # with max_norm=c: only columns with n > c, scaled by c / (n + eps)
        if prune_below > 0:
            values with |x| < prune_below become 0 (dense) or are removed (sparse)

    With the defaults this is exactly ``X[:, j] / ||X[:, j]||_2``. Note the
    default axis: 0 (columns), where scikit-learn's is 1 (rows); pass
    ``axis=1`` for scikit-learn's behaviour.

    Parameters
    ----------
    X : array of shape (rows, cols), or scipy.sparse CSR, CSC or COO matrix
        float16, bfloat16, float32 or float64. A dense array (NumPy, PyTorch
        or any DLPack array) needs contiguous rows or contiguous columns; a
        sparse matrix keeps its structure and only its stored values change.
        Repeated COO coordinates count as their sum.
    norm : {'l1', 'l2', 'max'} or float, default 'l2'
        The norm: p = 1, 2 or infinity, or any p > 0.
    axis : {0, 1}, default 0
        0 normalizes each column, 1 each row.
    copy : bool, default False
        False works in X itself; True leaves X alone and normalizes a copy.
    max_norm : float or None, default None
        None scales every non-zero vector to norm 1. A number turns this
        into a max-norm constraint: only vectors whose norm exceeds it are
        scaled, down to it.
    eps : float, default 0.0
        Added to the norm in the scale only; finite, ``>= 0``.
    subset : int array or sequence of int, optional
        Only these columns (axis 0) or rows (axis 1); repeats allowed.
    prune_below : float, default 0.0
        After scaling, remove values with ``|x| < prune_below`` (0 disables
        pruning). A sparse X is then not modified: the pruned matrix is a
        new one, returned.
    non_finite : {'skip', 'error'}, default 'skip'
        A vector holding NaN or infinity is left alone and counted, or makes
        the call raise `NonFiniteError` before anything is written.
    num_threads : int or None, default None
        Threads to use; None or 0 uses every core.
    backend : {'auto', 'reference'}, default 'auto'
        'reference' runs the library's slow scalar oracle, for testing.
    return_stats : bool, default False
        Also return a `MatrixStats`.

    Returns
    -------
    X_normalized
        X itself when it was normalized in place; a copy with ``copy=True``;
        a new sparse matrix when a sparse X was pruned. Always use the
        returned object.
    stats : MatrixStats
        Only with ``return_stats=True``.

    Raises
    ------
    IndexError
        A stored row or column index, or a subset entry, out of range.
    ValueError
        A bad option (axis, norm, eps, prune_below...), inconsistent sparse
        arrays, or a read-only array.
    TypeError
        A dtype, device, format or memory layout sparsenorm cannot work on
        in place.
    NonFiniteError
        With ``non_finite='error'``.

    When an exception is raised, nothing has been modified.

    Notes
    -----
    Numerics are those of `normalize_rows_`: norms in float32 for the
    32- and 16-bit types (float64 for float64), each value rounded once.
    The GIL is released during the computation.

    Examples
    --------
    >>> import numpy as np, sparsenorm
    >>> X = np.array([[1.0, 0.0], [1.0, 2.0], [1.0, 0.0], [1.0, 0.0]])
    >>> sparsenorm.normalize(X)          # columns, in place
    array([[0.5, 0. ],
           [0.5, 1. ],
           [0.5, 0. ],
           [0.5, 0. ]])
    >>> X[1]
    array([0.5, 1. ])
    """
    if isinstance(norm, str):
        p = choice(norm, _NORMS, "norm")
    else:
        p = real(norm, "norm")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be 0 or 1; got {axis!r}.") from None
    mode, target = (_CONSTANT_NORM, 1.0) if max_norm is None else (_MAX_NORM,
                                                                    real(max_norm, "max_norm"))
    options = (axis, mode, target, p, real(eps, "eps"), choice(non_finite, _NON_FINITE,
                                                              "non_finite"),
               threads(num_threads), choice(backend, _BACKENDS, "backend"),
               real(prune_below, "prune_below"))
    if _is_scipy_sparse(X):
        Y, stats = _sparse(X, copy, subset, options)
    else:
        Y = _copy_dense(X) if copy else X
        stats = _dense(Y, subset, options)
    return (Y, stats) if return_stats else Y
