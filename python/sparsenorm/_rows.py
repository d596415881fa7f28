"""The indexed-row operator: normalize_rows_, set_row_norms_, embedding_renorm_."""

import operator
from typing import Any, List, Literal, NamedTuple, Optional, Sequence, Union

from . import _arrays, _core

_MAX_NORM, _CONSTANT_NORM = 0, 1
_NON_FINITE = {"skip": 0, "error": 1}
_BACKENDS = {"auto": 0, "reference": 1}


class RowStats(NamedTuple):
    """What one call of the row operator did."""

    indices_seen: int
    """Length of the index list."""
    distinct_rows: int
    """Distinct row numbers in it."""
    rows_scaled: int
    """Distinct rows whose values were rescaled."""
    nonfinite_rows: int
    """Distinct rows left alone because they hold NaN or infinity."""


def choice(value, choices, name):
    try:
        return choices[value]
    except (KeyError, TypeError):
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name}={value!r} is not one of {allowed}.") from None


def real(value, name):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number; got {value!r}.") from None


def threads(num_threads):
    if num_threads is None:
        return 0
    try:
        n = operator.index(num_threads)
    except TypeError:
        raise TypeError(f"num_threads must be an integer or None; got {num_threads!r}.") from None
    if not -2 ** 31 <= n < 2 ** 31:  # the core rejects the other invalid counts
        raise ValueError(f"num_threads = {n} is invalid: use 0 for every core or a positive "
                         "count below 2**31.")
    return n


def _run(table, indices, mode, target, p, eps, non_finite, num_threads, backend,
         names=("max_norm", "p")):
    options = (mode, real(target, names[0]), real(p, names[1]), real(eps, "eps"),
               choice(non_finite, _NON_FINITE, "non_finite"), threads(num_threads),
               choice(backend, _BACKENDS, "backend"))
    exported = _arrays.export_target(table, "table")
    index_capsule = _arrays.export_indices(indices, "indices", table, exported)
    stats = _core.normalize_rows(exported.capsule, index_capsule, *options,
                                 exported.stream if exported.stream is not None else -1)
    exported.mark_modified()
    return RowStats(*stats)


NonFinite = Literal["skip", "error"]
BackendName = Literal["auto", "reference"]


def normalize_rows_(table: Any, indices: Any, max_norm: float = 1.0, p: float = 2.0,
                    eps: float = 1e-12, *, non_finite: NonFinite = "skip",
                    num_threads: Optional[int] = None,
                    backend: BackendName = "auto") -> RowStats:
    """Pull the indexed rows of a table back inside a norm ball, in place.

    Every distinct row ``r`` named in `indices` whose p-norm exceeds
    `max_norm` is scaled back to (just under) `max_norm`::

        n = ||table[r, :]||_p = (sum_k |table[r, k]|**p) ** (1/p)
                                (max_k |table[r, k]| for p = inf)
        if n > max_norm:
            table[r, :] *= max_norm / (n + eps)

    Rows with ``n <= max_norm``, rows of zeros, and rows holding NaN or
    infinity are left as they are. A row named several times is processed
    once; rows not named are neither read nor written. This is Caffe2's
    SparseNormalize (``use_max_norm=True``); `embedding_renorm_` is the same
    rule with PyTorch's eps.

    Parameters
    ----------
    table : array of shape (rows, cols)
        A NumPy array, a PyTorch tensor or any other DLPack array of float16,
        bfloat16, float32 or float64, modified in place. Each row must be
        contiguous; the rows may lie further apart than `cols` elements (a
        slice of a wider array's columns).
    indices : array or sequence of int
        Row numbers in ``[0, rows)``: an int32 or int64 array of any shape,
        or a sequence of ints, in any order, with repeats.
    max_norm : float, default 1.0
        The largest norm a row keeps; finite, ``>= 0``.
    p : float, default 2.0
        Order of the norm, ``> 0``; ``math.inf`` selects ``max |x|``.
    eps : float, default 1e-12
        Added to the norm in the scale only; finite, ``>= 0``.
    non_finite : {'skip', 'error'}, default 'skip'
        A row holding NaN or infinity is left alone and counted ('skip'),
        or makes the call raise `NonFiniteError` before anything is
        written ('error').
    num_threads : int or None, default None
        Threads to use; None or 0 uses every core OpenMP offers.
    backend : {'auto', 'reference'}, default 'auto'
        'reference' runs the library's slow scalar oracle, for testing.

    Returns
    -------
    RowStats
        ``(indices_seen, distinct_rows, rows_scaled, nonfinite_rows)``.

    Raises
    ------
    IndexError
        An index outside ``[0, rows)``; the message names its position and
        value.
    ValueError
        A bad option or shape, or a read-only array.
    TypeError
        A dtype, device or memory layout sparsenorm cannot work on in place
        (the array is never copied behind your back).
    NonFiniteError
        A named row holds NaN or infinity and ``non_finite='error'``.
    RuntimeError
        `table` is a PyTorch tensor that requires grad, outside
        ``torch.no_grad()``.

    When an exception is raised, nothing has been modified.

    Notes
    -----
    The norm of a float32, float16 or bfloat16 row is computed in float32
    (float64 for a float64 table), falling back to a scaled float64 sum
    where float32 would overflow or underflow; the scale is computed in
    float64 and rounded to float32 for the narrow types; each element is
    rounded once. Results do not depend on the order of the indices, on
    repeats or on the thread count.

    The GIL is released during the computation. A PyTorch tensor is
    modified through its storage; its autograd version counter is bumped
    as an in-place torch operation would.

    Examples
    --------
    >>> import numpy as np, sparsenorm
    >>> table = np.array([[3, 4], [0.3, 0.4], [6, 8]], dtype=np.float32)
    >>> sparsenorm.normalize_rows_(table, [0, 1, 0])
    RowStats(indices_seen=3, distinct_rows=2, rows_scaled=1, nonfinite_rows=0)
    >>> table
    array([[0.6, 0.8],
           [0.3, 0.4],
           [6. , 8. ]], dtype=float32)
    """
    return _run(table, indices, _MAX_NORM, max_norm, p, eps, non_finite, num_threads, backend)


def set_row_norms_(table: Any, indices: Any, norm: float = 1.0, p: float = 2.0,
                   eps: float = 1e-12, *, non_finite: NonFinite = "skip",
                   num_threads: Optional[int] = None,
                   backend: BackendName = "auto") -> RowStats:
    """Scale the indexed rows of a table onto a norm sphere, in place.

    The constant-norm form of `normalize_rows_`: every distinct row ``r``
    named in `indices` with a non-zero p-norm is scaled to norm `norm`::

        n = ||table[r, :]||_p
        if n > 0:
            table[r, :] *= norm / (n + eps)

    Rows of zeros and rows holding NaN or infinity are left as they are.
    This is Caffe2's SparseNormalize with ``use_max_norm=False``.

    Parameters
    ----------
    table, indices
        As for `normalize_rows_`.
    norm : float, default 1.0
        The norm every named non-zero row gets; finite, ``>= 0``.
    p, eps, non_finite, num_threads, backend
        As for `normalize_rows_`.

    Returns
    -------
    RowStats
        ``(indices_seen, distinct_rows, rows_scaled, nonfinite_rows)``.

    Raises
    ------
    IndexError, ValueError, TypeError, NonFiniteError, RuntimeError
        As for `normalize_rows_`; nothing is modified when one is raised.

    Examples
    --------
    >>> import numpy as np, sparsenorm
    >>> table = np.array([[3, 4], [0.3, 0.4], [6, 8]], dtype=np.float64)
    >>> sparsenorm.set_row_norms_(table, [1, 2], norm=10.0, eps=0.0).rows_scaled
    2
    >>> table
    array([[3., 4.],
           [6., 8.],
           [6., 8.]])
    """
    return _run(table, indices, _CONSTANT_NORM, norm, p, eps, non_finite, num_threads, backend,
                ("norm", "p"))


def embedding_renorm_(weight: Any, indices: Any, max_norm: float, norm_type: float = 2.0, *,
                      num_threads: Optional[int] = None, backend: BackendName = "auto") -> Any:
    """Drop-in for ``torch.embedding_renorm_(weight, indices, max_norm, norm_type)``.

    The rule of `normalize_rows_` with PyTorch's ``eps = 1e-7``::

        for each distinct r in indices:
            n = ||weight[r, :]||_norm_type
            if n > max_norm:
                weight[r, :] *= max_norm / (n + 1e-7)

    Parameters
    ----------
    weight : array of shape (num_embeddings, embedding_dim)
        Modified in place; a PyTorch tensor, a NumPy array, or any DLPack
        array of a supported dtype (see `normalize_rows_`).
    indices : array or sequence of int
        int32 or int64 row numbers, any shape, repeats allowed.
    max_norm : float
        The largest norm a row keeps.
    norm_type : float, default 2.0
        Order of the norm, ``> 0`` (``math.inf`` for max |x|).
    num_threads, backend
        As for `normalize_rows_`.

    Returns
    -------
    weight
        The same object, modified, as ``torch.embedding_renorm_`` returns it.
        Use `normalize_rows_` with ``eps=1e-7`` for the statistics.

    Raises
    ------
    IndexError, ValueError, TypeError, RuntimeError
        As for `normalize_rows_`; nothing is modified when one is raised.
        (PyTorch would write part of the table and then fail, or read past
        the end of it.)

    Notes
    -----
    Where the results differ from PyTorch's, deliberately: a row holding NaN
    or infinity is left as it is (PyTorch fills it with NaN or zeros); the
    norm of a float16 or bfloat16 row is computed in float32 (PyTorch
    computes it in the 16-bit type, several units in the last place off and
    overflowing for float16 rows whose sum of squares exceeds 65504). Other
    results agree with PyTorch's to within a few units in the last place
    (the order of the summation differs).

    Examples
    --------
    >>> import torch, sparsenorm
    >>> emb = torch.nn.Embedding(10, 3)
    >>> with torch.no_grad():
    ...     w = sparsenorm.embedding_renorm_(emb.weight, torch.tensor([1, 2, 2]), 0.5)
    >>> w is emb.weight
    True
    >>> bool(emb.weight[1].norm() <= 0.5)
    True
    """
    _run(weight, indices, _MAX_NORM, max_norm, norm_type, 1e-7, "skip", num_threads, backend,
         ("max_norm", "norm_type"))
    return weight


def normalize_rows_many_(tables: Sequence[Any], indices: Sequence[Any],
                         max_norm: Union[float, Sequence[float]] = 1.0, p: float = 2.0,
                         eps: float = 1e-12, *, non_finite: NonFinite = "skip",
                         num_threads: Optional[int] = None,
                         backend: BackendName = "auto") -> List[RowStats]:
    """`normalize_rows_` on many tables in one call.

    ``tables[k]``'s rows named in ``indices[k]`` are pulled back inside the
    norm ball of radius ``max_norm`` (or ``max_norm[k]``), as
    `normalize_rows_` does, for every k; the tables may differ in dtype and
    shape (a recommender's embedding tables, one per sparse feature).
    Everything is checked before anything is written: when one table or
    index list is bad, no table changes, and the message names it
    (``entries[k]: ...``). Passing the same table twice, or two views that
    share memory, is an error. The rows of all the tables are then shared
    out to the threads as one piece of work, which is faster than one call
    per table when the tables are many and their index lists short.

    Parameters
    ----------
    tables : sequence of arrays of shape (rows_k, cols_k)
        Modified in place, as for `normalize_rows_`; CPU memory.
    indices : sequence of index arrays or sequences, one per table
    max_norm : float or sequence of float, default 1.0
        One bound for every table, or one per table.
    p, eps, non_finite, num_threads, backend
        As for `normalize_rows_`, for every table.

    Returns
    -------
    list of RowStats
        One per table, in order.

    Examples
    --------
    >>> import numpy as np, sparsenorm
    >>> a = np.full((4, 2), 3.0, dtype=np.float32)
    >>> b = np.full((6, 3), 2.0)
    >>> [s.rows_scaled for s in sparsenorm.normalize_rows_many_([a, b], [[0, 0, 1], [5]])]
    [2, 1]
    """
    tables, indices = list(tables), list(indices)
    if len(indices) != len(tables):
        raise ValueError(f"indices has {len(indices)} lists for {len(tables)} tables; pass one "
                         "index list per table.")
    if isinstance(max_norm, (int, float)):
        targets = [real(max_norm, "max_norm")] * len(tables)
    else:
        targets = [real(m, "max_norm") for m in max_norm]
        if len(targets) != len(tables):
            raise ValueError(f"max_norm has {len(targets)} values for {len(tables)} tables; pass "
                             "one bound, or one per table.")
    exported = [_arrays.export_target(t, f"tables[{k}]") for k, t in enumerate(tables)]
    index_capsules = [_arrays.export_indices(i, f"indices[{k}]", tables[k], exported[k])
                      for k, i in enumerate(indices)]
    stats = _core.normalize_rows_many([e.capsule for e in exported], index_capsules, targets,
                                      _MAX_NORM, real(p, "p"), real(eps, "eps"),
                                      choice(non_finite, _NON_FINITE, "non_finite"),
                                      threads(num_threads), choice(backend, _BACKENDS, "backend"))
    for e in exported:
        e.mark_modified()
    return [RowStats(*s) for s in stats]
