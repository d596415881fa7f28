"""Sparse optimizers with the row-norm constraint fused in: the training step.

Functions over arrays (NumPy arrays, PyTorch CPU tensors, any DLPack array),
modified in place without copies, each returning `RowStats`:

sgd_(table, indices, values, *, lr, ...)
adagrad_(table, sum, indices, values, *, lr=0.01, ...)
rowwise_adagrad_(table, sum, indices, values, *, lr=0.01, ...)
sparse_adam_(table, exp_avg, exp_avg_sq, indices, values, *, lr=1e-3, ...)

``torch.optim.Optimizer`` subclasses over 2-D parameters with sparse
(``nn.Embedding(sparse=True)``) or dense gradients:

SGD, Adagrad, RowWiseAdagrad, SparseAdam

Each updates the rows the gradient names and, with ``max_norm`` or
``constant_norm``, renormalizes each updated row in the same pass. The
contract (rules, repeats, rounding, errors) is include/sparsenorm/optim.h.

The classes need PyTorch, which is imported when one of them is first
used; the functions do not.
"""

import contextlib
import math
import operator
import re
import sys
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Literal, Optional, Tuple,
                    Union)

import numpy as np

from . import _arrays, _core
from ._rows import (_BACKENDS, _NON_FINITE, BackendName, NonFinite, RowStats, choice, real,
                    threads)

DecayMode = Literal["none", "l2", "decoupled"]

# sparsenorm::OptimizerKind, WeightDecayMode and ConstraintKind
# (include/sparsenorm/optim.h).
_KIND_SGD, _KIND_ADAGRAD, _KIND_ROWWISE, _KIND_ADAM = 0, 1, 2, 3
_DECAY_MODES = {"none": 0, "l2": 1, "decoupled": 2}
_NO_CONSTRAINT, _MAX_NORM, _CONSTANT_NORM = 0, 1, 2
_INT64 = (-2 ** 63, 2 ** 63)


def _integer(value, name, low, high):
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer; got {value!r}.") from None
    if not low <= n < high:
        raise ValueError(f"{name} = {n} is out of range: it must be in [{low}, {high}).")
    return n


def _flag(value, name):
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False; got {value!r}.")


def _options(kind, *, lr, weight_decay, weight_decay_mode, step, max_norm, constant_norm,
             norm_type, norm_eps, stochastic_rounding, seed, non_finite, num_threads, backend,
             eps=0.0, lr_decay=0.0, betas=(0.9, 0.999), caffe2_sign=False):
    """The (numbers, codes) of _core.optimizer_step (see python/src/module.cc).

    Only types and spellings are checked here; the core checks the values
    (ranges, combinations) and its messages name them.
    """
    if max_norm is not None and constant_norm is not None:
        raise ValueError(f"max_norm = {max_norm!r} and constant_norm = {constant_norm!r} were "
                         "both given; a row has one constraint: pass one of them, or neither.")
    if max_norm is not None:
        constraint, target = _MAX_NORM, real(max_norm, "max_norm")
    elif constant_norm is not None:
        constraint, target = _CONSTANT_NORM, real(constant_norm, "constant_norm")
    else:
        constraint, target = _NO_CONSTRAINT, 1.0
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise TypeError(f"betas must be a pair of numbers (beta1, beta2); got {betas!r}.") from None
    seed = _integer(seed, "seed", 0, 2 ** 64)
    numbers = [real(lr, "lr"), real(eps, "eps"), real(weight_decay, "weight_decay"),
               real(lr_decay, "lr_decay"), real(beta1, "betas[0]"), real(beta2, "betas[1]"),
               target, real(norm_type, "norm_type"), real(norm_eps, "norm_eps")]
    codes = [kind, choice(weight_decay_mode, _DECAY_MODES, "weight_decay_mode"),
             int(_flag(caffe2_sign, "caffe2_sign")), _integer(step, "step", *_INT64), constraint,
             int(_flag(stochastic_rounding, "stochastic_rounding")),
             seed - 2 ** 64 if seed >= 2 ** 63 else seed,  # the uint64 seed's bits as an int64
             choice(non_finite, _NON_FINITE, "non_finite"), threads(num_threads),
             choice(backend, _BACKENDS, "backend")]
    return numbers, codes


def _export_read_only(array, name):
    """A DLPack capsule of a floating-point array the step only reads (the
    gradient). A copy would be harmless here, so one is made where DLPack
    cannot export the array as it is (a read-only NumPy array)."""
    if isinstance(array, np.ndarray):
        if not array.flags.writeable:
            array = array.copy()  # NumPy 1.24's DLPack cannot export read-only arrays
        try:
            return array.__dlpack__()
        except BufferError:
            pass  # described by _capsule below
    elif not hasattr(array, "__dlpack__"):
        raise TypeError(f"{name} must be an array (a NumPy array, a PyTorch tensor or another "
                        f"DLPack array); got {_arrays.describe(array)}.")
    elif type(array).__module__.split(".")[0] == "torch" and array.requires_grad:
        array = array.detach()  # read only: the same storage, exportable
    device_type, device_id = _arrays._device(array, name)
    capsule, _ = _arrays._capsule(array, name, device_type, device_id, values=True)
    return capsule


def _column(sum, name):
    """Row-wise Adagrad's accumulators, shape (rows,), as the (rows, 1) view
    the core takes."""
    shape = getattr(sum, "shape", None)
    if shape is None or len(shape) != 1:
        raise ValueError(f"{name} must be a 1-D array of shape (rows,), one accumulator per "
                         f"table row; got {_arrays.describe(sum)}.")
    return sum[:, None]


class _Exported:
    """One table's step exported to the core: the DLPack capsules of the
    table, its state, its indices and its gradient values."""

    __slots__ = ("table", "states", "indices", "values")

    def __init__(self, table, states, indices, values):
        self.table = _arrays.export_target(table, "table")
        self.states = [_arrays.export_target(s, name) for s, name in states]
        self.indices = (None if indices is None
                        else _arrays.export_indices(indices, "indices", table, self.table))
        self.values = _export_read_only(values, "values")

    def arguments(self, numbers, codes):
        return (self.table.capsule, tuple(e.capsule for e in self.states), self.indices,
                self.values, numbers, codes)

    def stream(self):
        return self.table.stream if self.table.stream is not None else 0

    def mark_modified(self):
        self.table.mark_modified()
        for e in self.states:
            e.mark_modified()


def _run(table, states, indices, values, numbers, codes):
    """One call of the core: `states` is a sequence of (array, name)."""
    exported = _Exported(table, states, indices, values)
    stats = _core.optimizer_step(*exported.arguments(numbers, codes), exported.stream())
    exported.mark_modified()
    return RowStats(*stats)


# ---------------------------------------------------------------------------
# The functions.

def sgd_(table: Any, indices: Any, values: Any, *, lr: float, weight_decay: float = 0.0,
         weight_decay_mode: DecayMode = "l2", step: int = 1, max_norm: Optional[float] = None,
         constant_norm: Optional[float] = None, norm_type: float = 2.0, norm_eps: float = 1e-7,
         stochastic_rounding: bool = False, seed: int = 0, non_finite: NonFinite = "skip",
         num_threads: Optional[int] = None, backend: BackendName = "auto") -> RowStats:
    """One step of stochastic gradient descent on the rows a gradient names, in place.

    For each distinct row ``r`` of `indices` (every row, in order, when
    `indices` is None), with ``g`` the sum of the gradient rows of r's
    occurrences and ``w = table[r]`` in the arithmetic type::

        'l2':        w' = w - lr * (g + weight_decay * w)
        'decoupled': w' = (1 - lr * weight_decay) * w - lr * g
        'none':      w' = w - lr * g

    followed by the norm constraint, then rounding to the table's dtype::

        n = ||w'||_norm_type
        max_norm:       if n > max_norm: w' *= max_norm / (n + norm_eps)
        constant_norm:  if n > 0:        w' *= constant_norm / (n + norm_eps)
        table[r] = round(w')

    A row whose ``g`` or ``w'`` holds NaN or infinity is left as it is and
    counted (``non_finite='skip'``). Rows the gradient does not name are
    neither read nor written: weight decay is lazy.

    Parameters
    ----------
    table : array of shape (rows, cols)
        float16, bfloat16, float32 or float64, modified in place (NumPy
        array, PyTorch tensor or any DLPack array; rows contiguous).
    indices : array or sequence of int, or None
        The sparse gradient's row numbers in ``[0, rows)``, int32 or int64,
        with repeats in any order (as ``nn.Embedding(sparse=True)`` produces
        them: ``grad._indices()[0]``). None: `values` is a dense gradient.
    values : array of shape (len(indices), cols), or (rows, cols) if dense
        The gradient rows, of the table's dtype or of its arithmetic type
        (float32; float64 for a float64 table). Only read.
    lr : float
        The learning rate, finite, ``>= 0``.
    weight_decay : float, default 0.0
        Finite, ``>= 0``; nonzero needs a `weight_decay_mode` other than
        'none'.
    weight_decay_mode : {'l2', 'decoupled', 'none'}, default 'l2'
        'l2' adds ``weight_decay * w`` to the gradient (torch.optim.SGD's
        weight_decay); 'decoupled' scales w by ``1 - lr * weight_decay``.
    step : int, default 1
        This step's number, from 1: it keys the random bits of stochastic
        rounding (Adagrad's and Adam's rules use it too).
    max_norm : float or None, default None
        After the update, a row whose norm exceeds it is scaled back to it
        (``torch.embedding_renorm_``'s rule, as ``nn.Embedding(max_norm=...)``
        applies it). Finite, ``>= 0``.
    constant_norm : float or None, default None
        After the update, every non-zero row is scaled to this norm. Not
        together with `max_norm`.
    norm_type : float, default 2.0
        Order of the norm, ``> 0``; ``math.inf`` selects ``max |x|``.
    norm_eps : float, default 1e-7
        Added to the norm in the scale (PyTorch's value); finite, ``>= 0``.
    stochastic_rounding : bool, default False
        Round float16 and bfloat16 results up or down at random, with the
        probabilities that make the rounding unbiased; the bits come from a
        counter-based generator keyed on (seed, step, row, column), so they
        do not depend on the thread count. An error for float32/float64
        tables.
    seed : int, default 0
        The generator's key, in ``[0, 2**64)``.
    non_finite : {'skip', 'error'}, default 'skip'
        'error' raises `NonFiniteError`, before anything is written, when a
        gradient element is NaN or infinite. (A row whose sum or update
        overflows is still left and counted.)
    num_threads : int or None, default None
        Threads to use; None or 0 uses every core OpenMP offers. The result
        does not depend on it.
    backend : {'auto', 'reference'}, default 'auto'
        'reference' runs the library's slow scalar oracle, for testing.

    Returns
    -------
    RowStats
        ``indices_seen`` (length of `indices`), ``distinct_rows`` (rows
        updated or left), ``rows_scaled`` (rows the constraint scaled),
        ``nonfinite_rows`` (rows left alone).

    Raises
    ------
    IndexError
        An index outside ``[0, rows)``; the message names its position.
    ValueError
        A bad option or shape (the messages use the C++ names:
        ``options.constraint.target`` is `max_norm` or `constant_norm`,
        ``options.constraint.p`` is `norm_type`, ``options.constraint.eps``
        is `norm_eps`).
    TypeError
        A dtype, device or layout the step cannot work on in place.
    NonFiniteError
        With ``non_finite='error'``, a NaN or infinite gradient element.
    RuntimeError
        A PyTorch table that requires grad, outside ``torch.no_grad()``.

    When an exception is raised, nothing has been modified.

    Notes
    -----
    The arithmetic type is float32 for float32, float16 and bfloat16 tables
    and float64 for float64 tables; hyperparameters are evaluated in
    float64 and rounded to it. The gradient rows of a repeated row are
    summed in list order, in groups of 64 consecutive occurrences whose sums
    are then added in order: the result is bit for bit independent of the
    thread count. Each stored element is rounded once (to nearest, ties to
    even, unless `stochastic_rounding`).

    Examples
    --------
    >>> import numpy as np, sparsenorm.optim as so
    >>> table = np.array([[4, 5], [1, 1]], dtype=np.float64)
    >>> so.sgd_(table, [0, 0], np.array([[1, 1], [1, 1]], dtype=np.float64), lr=0.5,
    ...         max_norm=1.0, norm_eps=0.0)
    RowStats(indices_seen=2, distinct_rows=1, rows_scaled=1, nonfinite_rows=0)
    >>> table
    array([[0.6, 0.8],
           [1. , 1. ]])
    """
    numbers, codes = _options(
        _KIND_SGD, lr=lr, weight_decay=weight_decay, weight_decay_mode=weight_decay_mode, step=step,
        max_norm=max_norm, constant_norm=constant_norm, norm_type=norm_type, norm_eps=norm_eps,
        stochastic_rounding=stochastic_rounding, seed=seed, non_finite=non_finite,
        num_threads=num_threads, backend=backend)
    return _run(table, (), indices, values, numbers, codes)


def adagrad_(table: Any, sum: Any, indices: Any, values: Any, *, lr: float = 0.01,
             lr_decay: float = 0.0, weight_decay: float = 0.0, weight_decay_mode: DecayMode = "l2",
             eps: float = 1e-10, step: int = 1, caffe2_sign: bool = False,
             max_norm: Optional[float] = None, constant_norm: Optional[float] = None,
             norm_type: float = 2.0, norm_eps: float = 1e-7, stochastic_rounding: bool = False,
             seed: int = 0, non_finite: NonFinite = "skip", num_threads: Optional[int] = None,
             backend: BackendName = "auto") -> RowStats:
    """One Adagrad step (torch.optim.Adagrad's rule) on the rows a gradient names, in place.

    For each distinct row ``r`` (see `sgd_` for ``g``, ``w``, the
    constraint, rounding and non-finite rows), element by element::

        clr = lr / (1 + (step - 1) * lr_decay)
        g'  = g + weight_decay * w                  ('l2'; g otherwise)
        sum[r] += g' ** 2
        w'  = w - clr * g' / (sqrt(sum[r]) + eps)
        ('decoupled': w' = (1 - clr * weight_decay) * w - clr * g / (sqrt(sum[r]) + eps))

    With `caffe2_sign` (Caffe2's SparseAdagrad) the update is added:
    ``w' = w + clr * ...``, descent with a negative `lr`, as Caffe2 passes it.
    A row left as non-finite keeps its old ``sum`` too.

    Parameters
    ----------
    table, indices, values
        As for `sgd_`.
    sum : array of shape (rows, cols)
        The squared-gradient accumulators, float32 (float64 for a float64
        table), modified in place; start them at zero (or torch's
        ``initial_accumulator_value``).
    lr : float, default 0.01
        Finite, ``>= 0`` (any sign with `caffe2_sign`).
    lr_decay : float, default 0.0
        Finite, ``>= 0``.
    weight_decay : float, default 0.0
        Finite, ``>= 0``; touches only the named rows (torch refuses weight
        decay with sparse gradients).
    weight_decay_mode : {'l2', 'decoupled', 'none'}, default 'l2'
    eps : float, default 1e-10
        Finite, ``>= 0``.
    step : int, default 1
        This step's number, from 1 (torch's ``state['step']`` after its
        increment): it sets ``clr`` and keys stochastic rounding.
    caffe2_sign : bool, default False
    max_norm, constant_norm, norm_type, norm_eps, stochastic_rounding
        As for `sgd_`.
    seed, non_finite, num_threads, backend
        As for `sgd_`.

    Returns
    -------
    RowStats

    Raises
    ------
    IndexError, ValueError, TypeError, NonFiniteError, RuntimeError
        As for `sgd_`; nothing is modified, in the table or in `sum`, when
        one is raised.

    Examples
    --------
    >>> import numpy as np, sparsenorm.optim as so
    >>> table, total = np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2))
    >>> so.adagrad_(table, total, [1, 1], np.array([[1.0, 1.0], [2.0, -3.0]]), lr=0.5, eps=0.0)
    RowStats(indices_seen=2, distinct_rows=1, rows_scaled=0, nonfinite_rows=0)
    >>> total  # row 1's summed gradient is (3, -2)
    array([[0., 0.],
           [9., 4.]])
    >>> table
    array([[1. , 2. ],
           [2.5, 4.5]])
    """
    numbers, codes = _options(
        _KIND_ADAGRAD, lr=lr, eps=eps, lr_decay=lr_decay, caffe2_sign=caffe2_sign,
        weight_decay=weight_decay, weight_decay_mode=weight_decay_mode, step=step,
        max_norm=max_norm, constant_norm=constant_norm, norm_type=norm_type, norm_eps=norm_eps,
        stochastic_rounding=stochastic_rounding, seed=seed, non_finite=non_finite,
        num_threads=num_threads, backend=backend)
    return _run(table, ((sum, "sum"),), indices, values, numbers, codes)


def rowwise_adagrad_(table: Any, sum: Any, indices: Any, values: Any, *, lr: float = 0.01,
                     eps: float = 1e-8, weight_decay: float = 0.0,
                     weight_decay_mode: DecayMode = "none", step: int = 1,
                     max_norm: Optional[float] = None, constant_norm: Optional[float] = None,
                     norm_type: float = 2.0, norm_eps: float = 1e-7,
                     stochastic_rounding: bool = False, seed: int = 0,
                     non_finite: NonFinite = "skip", num_threads: Optional[int] = None,
                     backend: BackendName = "auto") -> RowStats:
    """One row-wise Adagrad step (FBGEMM's exact row-wise Adagrad), in place.

    One accumulator per row. For each distinct row ``r`` (see `sgd_` for
    ``g``, ``w``, the constraint, rounding and non-finite rows), with ``j``
    a column::

        g' = g + weight_decay * w                  ('l2'; g otherwise; only in the mean)
        sum[r] += mean_j(g'[j] ** 2)
        m  = lr / (sqrt(sum[r]) + eps)
        c  = 1 - m * weight_decay    ('l2')
             1 - lr * weight_decay   ('decoupled')
             1                       ('none')
        w' = c * w - m * g

    Parameters
    ----------
    table, indices, values
        As for `sgd_`.
    sum : array of shape (rows,)
        The accumulators, float32 (float64 for a float64 table), modified
        in place; start them at zero.
    lr : float, default 0.01
    eps : float, default 1e-8
    weight_decay : float, default 0.0
        Nonzero needs `weight_decay_mode` 'l2' or 'decoupled'.
    weight_decay_mode : {'none', 'l2', 'decoupled'}, default 'none'
        FBGEMM's WeightDecayMode NONE, L2 and DECOUPLE.
    step : int, default 1
        Keys stochastic rounding only.
    max_norm, constant_norm, norm_type, norm_eps, stochastic_rounding
        As for `sgd_`.
    seed, non_finite, num_threads, backend
        As for `sgd_`.

    Returns
    -------
    RowStats

    Raises
    ------
    IndexError, ValueError, TypeError, NonFiniteError, RuntimeError
        As for `sgd_`; nothing is modified when one is raised.

    Notes
    -----
    The sum of squares of a row is added in an order the backend fixes, so
    results agree between backends to within its rounding, not bit for bit
    (they do not depend on the thread count).

    Examples
    --------
    >>> import numpy as np, sparsenorm.optim as so
    >>> table, total = np.array([[3.0, 4.0], [1.0, 1.0]]), np.zeros(2)
    >>> so.rowwise_adagrad_(table, total, [0], np.array([[3.0, 4.0]]), lr=1.0, eps=0.0,
    ...                     max_norm=1.0, norm_eps=0.0)
    RowStats(indices_seen=1, distinct_rows=1, rows_scaled=1, nonfinite_rows=0)
    >>> total  # the mean of (9, 16)
    array([12.5,  0. ])
    >>> table
    array([[0.6, 0.8],
           [1. , 1. ]])
    """
    numbers, codes = _options(
        _KIND_ROWWISE, lr=lr, eps=eps, weight_decay=weight_decay,
        weight_decay_mode=weight_decay_mode, step=step, max_norm=max_norm,
        constant_norm=constant_norm, norm_type=norm_type, norm_eps=norm_eps,
        stochastic_rounding=stochastic_rounding, seed=seed, non_finite=non_finite,
        num_threads=num_threads, backend=backend)
    return _run(table, ((_column(sum, "sum"), "sum"),), indices, values, numbers, codes)


def sparse_adam_(table: Any, exp_avg: Any, exp_avg_sq: Any, indices: Any, values: Any, *,
                 lr: float = 1e-3, betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, weight_decay_mode: DecayMode = "l2", step: int = 1,
                 max_norm: Optional[float] = None, constant_norm: Optional[float] = None,
                 norm_type: float = 2.0, norm_eps: float = 1e-7, stochastic_rounding: bool = False,
                 seed: int = 0, non_finite: NonFinite = "skip", num_threads: Optional[int] = None,
                 backend: BackendName = "auto") -> RowStats:
    """One lazy Adam step (torch.optim.SparseAdam's rule), in place.

    Only the moments of the named rows move. For each distinct row ``r``
    (see `sgd_` for ``g``, ``w``, the constraint, rounding and non-finite
    rows), element by element, with ``t = step``::

        g' = g + weight_decay * w                  ('l2'; g otherwise)
        exp_avg[r]    += (g' - exp_avg[r]) * (1 - beta1)
        exp_avg_sq[r] += (g' ** 2 - exp_avg_sq[r]) * (1 - beta2)
        step_size = lr * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
        w' = w - step_size * exp_avg[r] / (sqrt(exp_avg_sq[r]) + eps)
        ('decoupled', as AdamW: w is first multiplied by 1 - lr * weight_decay)

    Parameters
    ----------
    table, indices, values
        As for `sgd_`.
    exp_avg, exp_avg_sq : arrays of shape (rows, cols)
        The moments, float32 (float64 for a float64 table), modified in
        place; start them at zero.
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
        Each in ``[0, 1)``.
    eps : float, default 1e-8
    weight_decay : float, default 0.0
        (torch.optim.SparseAdam has none.)
    weight_decay_mode : {'l2', 'decoupled', 'none'}, default 'l2'
    step : int, default 1
        This step's number, from 1 (torch's ``state['step']`` after its
        increment): the bias corrections and stochastic rounding.
    max_norm, constant_norm, norm_type, norm_eps, stochastic_rounding
        As for `sgd_`.
    seed, non_finite, num_threads, backend
        As for `sgd_`.

    Returns
    -------
    RowStats

    Raises
    ------
    IndexError, ValueError, TypeError, NonFiniteError, RuntimeError
        As for `sgd_`; nothing is modified when one is raised.

    Examples
    --------
    >>> import numpy as np, sparsenorm.optim as so
    >>> table = np.array([[1.0, 1.0], [2.0, 2.0]])
    >>> exp_avg, exp_avg_sq = np.zeros((2, 2)), np.zeros((2, 2))
    >>> so.sparse_adam_(table, exp_avg, exp_avg_sq, [1], np.array([[0.5, -2.0]]), lr=0.1,
    ...                 eps=0.0)
    RowStats(indices_seen=1, distinct_rows=1, rows_scaled=0, nonfinite_rows=0)
    >>> table  # Adam's first step moves each element by lr against the gradient's sign
    array([[1. , 1. ],
           [1.9, 2.1]])
    """
    numbers, codes = _options(
        _KIND_ADAM, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
        weight_decay_mode=weight_decay_mode, step=step, max_norm=max_norm,
        constant_norm=constant_norm, norm_type=norm_type, norm_eps=norm_eps,
        stochastic_rounding=stochastic_rounding, seed=seed, non_finite=non_finite,
        num_threads=num_threads, backend=backend)
    return _run(table, ((exp_avg, "exp_avg"), (exp_avg_sq, "exp_avg_sq")), indices, values,
                numbers, codes)


# ---------------------------------------------------------------------------
# torch.optim.Optimizer subclasses. Their behaviour is written here in plain
# classes, each combined with torch.optim.Optimizer when it is first asked
# for (see __getattr__ at the end), so that `import sparsenorm` does not
# import torch.

_TORCH_DTYPES = ("float16", "bfloat16", "float32", "float64")

# What torch.optim.Optimizer takes: tensors, or dicts of a group's "params"
# and its own options.
Params = Union[Iterable[Any], Iterable[Dict[str, Any]]]


def _torch():
    import torch

    return torch


def _required():
    """torch's marker of an option without a default (SGD's lr)."""
    from torch.optim.optimizer import required

    return required


def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def _where(group_index, param_index, p):
    return (f"parameter {param_index} of group {group_index} (shape {tuple(p.shape)}, "
            f"{_dtype_name(p.dtype)}, {p.device})")


def _state_dtype(param_dtype):
    """The arithmetic type: float64 state for float64 parameters, float32 else."""
    torch = sys.modules["torch"]
    return torch.float64 if param_dtype == torch.float64 else torch.float32


def _check_on_scratch(numbers, codes, dtype, state_count):
    """The core's checks of a set of options for a table dtype, on a 1 x 1
    scratch table and an empty gradient: its messages, nothing of the
    caller's read or written."""
    torch = sys.modules["torch"]
    states = tuple(torch.zeros((1, 1), dtype=_state_dtype(dtype)).__dlpack__()
                   for _ in range(state_count))
    _core.optimizer_step(torch.zeros((1, 1), dtype=dtype).__dlpack__(), states,
                         torch.zeros(0, dtype=torch.int64).__dlpack__(),
                         torch.zeros((0, 1), dtype=dtype).__dlpack__(), numbers, codes)


class _Optimizer:
    """What the four optimizers share. The concrete classes set:

    _torch_off    torch keywords sparsenorm does not implement, with the
                  values that ask for nothing (the only ones accepted)
    _state_shapes state tensors, in the core's order: name -> 'table' (the
                  parameter's shape) or 'row' (one value per row)
    _pack(group, step)  the core's (numbers, codes) for a group's options
    """

    _torch_off = {}
    _state_shapes = {}

    def __init__(self, params, defaults, torch_keywords, synchronize):
        self._reject(torch_keywords, type(self).__name__)
        defaults["synchronize"] = _flag(synchronize, "synchronize")
        self.last_stats: List[RowStats] = []
        super().__init__(params, defaults)
        if "sum" in self._state_shapes:
            # As torch.optim.Adagrad: the accumulators exist from the start.
            for group in self.param_groups:
                for p in group["params"]:
                    self.state[p] = self._new_state(p, group)

    @staticmethod
    def _common(group):
        return dict(max_norm=group["max_norm"], constant_norm=group["constant_norm"],
                    norm_type=group["norm_type"], norm_eps=group["norm_eps"],
                    stochastic_rounding=group["stochastic_rounding"], seed=group["seed"],
                    num_threads=group["num_threads"], non_finite="skip", backend="auto")

    @classmethod
    def _reject(cls, settings, where):
        for key, off in cls._torch_off.items():
            if key not in settings:
                continue
            value = settings[key]
            try:
                accepted = any(value is v or (v is not None and value == v) for v in off)
            except (TypeError, ValueError, RuntimeError):
                accepted = False
            if not accepted:
                raise ValueError(
                    f"{where}: {key}={value!r} is not implemented by sparsenorm.optim."
                    f"{cls.__name__}; only {key}={off[0]!r} is accepted (a torch option is "
                    "never accepted and then ignored).")

    # -- parameters --------------------------------------------------------

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """torch's add_param_group, after sparsenorm's checks of the group's
        parameters and options (nothing is added when one fails)."""
        torch = _torch()
        if not isinstance(param_group, dict) or isinstance(param_group.get("params"), set):
            return super().add_param_group(param_group)  # torch's message
        group_index = len(self.param_groups)
        where = f"{type(self).__name__} group {group_index}"
        params = param_group.get("params", [])
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        if "params" in param_group:
            # A generator (module.parameters()) can be read once only: what
            # torch reads next is this list (torch stores a list there too).
            param_group["params"] = params
        settings = {**self.defaults, **param_group}
        missing = [k for k, v in settings.items() if v is _required()]
        if missing:
            raise ValueError(f"{where} gives no {missing[0]}, which has no default: pass it to "
                             "the constructor or in the group.")
        self._reject(settings, where)
        if not _flag(settings["synchronize"], "synchronize"):
            raise ValueError("synchronize=False (a CUDA step that does not wait for the device's "
                             "result) is not implemented in this version; the step waits, so "
                             "that its errors raise in step().")
        if "initial_accumulator_value" in settings:
            v = real(settings["initial_accumulator_value"], "initial_accumulator_value")
            if not 0.0 <= v < math.inf:
                raise ValueError(f"initial_accumulator_value = {v!r} is invalid: it must be a "
                                 "finite number >= 0.")
        tensors = [p for p in params if isinstance(p, torch.Tensor)]  # torch reports the rest
        for i, p in enumerate(tensors):
            _check_param(p, group_index, i)
        numbers, codes = self._pack(settings, 1)
        for dtype in {p.dtype for p in tensors}:
            _check_on_scratch(numbers, codes, dtype, len(self._state_shapes))
        super().add_param_group(param_group)

    def _new_state(self, p, group):
        torch = sys.modules["torch"]
        state = {"step": 0}
        for name, shape in self._state_shapes.items():
            fill = float(group.get("initial_accumulator_value", 0.0)) if name == "sum" else 0.0
            size = tuple(p.shape) if shape == "table" else (p.shape[0],)
            state[name] = torch.full(size, fill, dtype=_state_dtype(p.dtype), device=p.device)
        return state

    def _state_arrays(self, state):
        """(array, name) of each state tensor as the core takes it: a
        one-per-row tensor as its (rows, 1) view."""
        return [(state[name][:, None] if shape == "row" else state[name], name)
                for name, shape in self._state_shapes.items()]

    # -- the step ----------------------------------------------------------

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """One optimization step over every parameter that has a gradient.

        Follows torch's protocol: `closure`, if given, is called under
        ``torch.enable_grad()`` and its loss is returned. The options are
        read from each parameter group at every step, so learning-rate
        schedulers work. ``state['step']`` is incremented before the update,
        as torch does, and passed to the rule. The statistics of each
        parameter's update are left in ``self.last_stats`` (a list of
        `RowStats`, one per parameter that had a gradient, in group order):
        ``nonfinite_rows`` counts rows left alone because their gradient or
        update was NaN or infinite.

        Everything is checked before the first parameter is written: when an
        exception is raised, every parameter and the optimizer's state are
        as they were. Its message starts with the parameter it is about
        ("parameter 1 of group 0 (shape (50, 8), float32, cpu): ...").
        """
        torch = _torch()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            self._update()
        return loss

    def _update(self):
        work = []
        for gi, group in enumerate(self.param_groups):
            self._reject(group, f"{type(self).__name__} group {gi}")
            for pi, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                _check_param(p, gi, pi)
                where = _where(gi, pi, p)
                state = self.state.get(p)  # not self.state[p]: that would add an entry
                is_new = not state
                if is_new:  # kept only if the step succeeds
                    state = self._new_state(p, group)
                numbers, codes = self._pack(group, int(state["step"]) + 1)
                indices, values = _gradient(p, where)
                work.append((gi, where, p, state, is_new, indices, values, numbers, codes))
        self.last_stats = self._apply(work)

    def _apply(self, work):
        """Every parameter's update: the parameters in CPU memory in one call
        of the core (OptimizerStepMany), which checks all of them before it
        writes any and updates the rows of all of them in one dispatch to
        the threads; CUDA parameters one call each, on the parameter's
        current stream, waited for."""
        on_host = [w for w in work if w[2].device.type == "cpu"]
        on_device = [w for w in work if w[2].device.type != "cpu"]
        stats = {}
        if on_host:
            exported = []
            for gi, where, p, state, is_new, indices, values, numbers, codes in on_host:
                with _naming(where):
                    exported.append(_Exported(p, self._state_arrays(state), indices, values))
            try:
                results = _core.optimizer_step_many(
                    [e.arguments(w[7], w[8]) for e, w in zip(exported, on_host)])
            except (ValueError, TypeError, IndexError) as e:
                raise _named_by_entry(e, [w[1] for w in on_host]) from None
            for e, w, r in zip(exported, on_host, results):
                e.mark_modified()
                stats[id(w)] = RowStats(*r)
        for w in on_device:
            gi, where, p, state, is_new, indices, values, numbers, codes = w
            with _naming(where):
                stats[id(w)] = _run(p, self._state_arrays(state), indices, values, numbers, codes)
        for w in work:
            state, is_new = w[3], w[4]
            state["step"] = int(state["step"]) + 1
            if is_new:
                self.state[w[2]] = state
        return [stats[id(w)] for w in work]

    # -- saving and loading ------------------------------------------------

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("last_stats", [])
        # Groups saved by another optimizer (torch's own) lack our options.
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """torch's load_state_dict, keeping the state in its own dtype.

        torch casts floating-point state to the parameter's dtype; the
        state of a float16 or bfloat16 parameter is float32 here and stays
        so. 'step' may be an int or a tensor (torch.optim.Adagrad's). The
        shapes of the state tensors are checked before anything is loaded.
        """
        torch = _torch()
        pairs = self._saved_pairs(state_dict)
        for saved_id, p, where in pairs:
            entry = state_dict["state"].get(saved_id, {})
            for name, shape in self._state_shapes.items():
                value = entry.get(name)
                expected = tuple(p.shape) if shape == "table" else (p.shape[0],)
                if isinstance(value, torch.Tensor) and tuple(value.shape) != expected:
                    raise ValueError(f"the state_dict's {name!r} for {where} has shape "
                                     f"{tuple(value.shape)}; {expected} was expected.")
        super().load_state_dict(state_dict)
        for saved_id, p, where in pairs:
            entry = state_dict["state"].get(saved_id)
            if entry is None:
                continue
            state = self.state[p]
            for name in self._state_shapes:
                if isinstance(entry.get(name), torch.Tensor):
                    state[name] = entry[name].detach().to(
                        device=p.device, dtype=_state_dtype(p.dtype), copy=True).contiguous()
            if "step" in state:
                state["step"] = int(state["step"])

    def _saved_pairs(self, state_dict):
        """(saved id, parameter, description) as torch's load_state_dict
        pairs them; empty where the groups do not match (torch then raises)."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"])
                for a, b in zip(saved_groups, self.param_groups)):
            return []
        return [(saved_id, p, _where(gi, pi, p))
                for gi, (saved, group) in enumerate(zip(saved_groups, self.param_groups))
                for pi, (saved_id, p) in enumerate(zip(saved["params"], group["params"]))]


@contextlib.contextmanager
def _naming(where):
    """The library's messages say "table", "indices[3]", "state sum": an
    error of an optimizer's step also names the parameter."""
    try:
        yield
    except (ValueError, TypeError, IndexError) as e:
        try:
            named = type(e)(f"{where}: {e}")
        except Exception:  # an exception type that takes other arguments: as it is
            raise e from None
        raise named.with_traceback(e.__traceback__) from None


def _named_by_entry(error, names):
    """The core's message about entries[k] of a many-table step, with
    entries[k] replaced by the parameter it is."""
    text = re.sub(r"entries\[(\d+)\](\.?)",
                  lambda m: names[int(m.group(1))] + (" " if m.group(2) else ""), str(error))
    try:
        return type(error)(text)
    except Exception:  # an exception type that takes other arguments: as it is
        return error


def _check_param(p, group_index, param_index):
    if p.device.type == "cuda" and not _core.HAS_CUDA:
        raise TypeError(f"{_where(group_index, param_index, p)} is a CUDA tensor, and this build "
                        "of sparsenorm has no CUDA backend (build it with nvcc present, "
                        "SPARSENORM_CUDA=ON).")
    if p.device.type not in ("cpu", "cuda"):
        raise TypeError(f"{_where(group_index, param_index, p)} is neither in CPU memory nor "
                        "on a CUDA device; sparsenorm.optim updates CPU and CUDA tensors.")
    if p.dim() != 2:
        raise ValueError(f"{_where(group_index, param_index, p)} is not 2-D; sparsenorm's "
                         "optimizers update tables of rows (rows x cols), as nn.Embedding's "
                         "weight.")
    if _dtype_name(p.dtype) not in _TORCH_DTYPES:
        raise TypeError(f"{_where(group_index, param_index, p)}: the dtype must be one of "
                        f"{', '.join(_TORCH_DTYPES)}.")


def _gradient(p, where):
    """(indices or None, values) of a parameter's gradient, without copies
    where the gradient's layout allows (it is only read: a copy is harmless)."""
    torch = sys.modules["torch"]
    grad = p.grad
    if grad.layout == torch.sparse_coo:
        if grad._nnz() == 0:  # as zero_grad() leaves it: empty, and of sparse_dim 2
            return (torch.empty(0, dtype=torch.int64, device=p.device),
                    torch.empty((0, p.shape[1]), dtype=p.dtype, device=p.device))
        if grad.sparse_dim() != 1 or grad.dense_dim() != 1:
            raise ValueError(
                f"{where} has a sparse gradient with {grad.sparse_dim()} sparse and "
                f"{grad.dense_dim()} dense dimensions; sparsenorm takes row-sparse gradients "
                "(1 sparse and 1 dense dimension), as nn.Embedding(sparse=True) produces them.")
        values = grad._values()  # uncoalesced: repeats are summed by the step
        return grad._indices()[0], values if values.is_contiguous() else values.contiguous()
    if grad.layout != torch.strided:
        raise TypeError(f"{where} has a gradient of layout {grad.layout}; sparsenorm takes "
                        "dense (strided) and sparse COO gradients.")
    return None, grad if grad.is_contiguous() else grad.contiguous()


def _constraint_docs():
    return """
    max_norm : float or None, default None
        After the update, a row whose norm exceeds it is scaled back to it
        (the rule of ``nn.Embedding(max_norm=...)``), in the same pass.
    constant_norm : float or None, default None
        After the update, every non-zero row is scaled to this norm. Not
        together with `max_norm`.
    norm_type : float, default 2.0
        Order of the norm, ``> 0``; ``math.inf`` for ``max |x|``.
    norm_eps : float, default 1e-7
        Added to the norm in the scale (``torch.embedding_renorm_``'s).
    stochastic_rounding : bool, default False
        Round float16/bfloat16 parameters stochastically (unbiased), with
        bits keyed on (seed, step, row, column).
    seed : int, default 0
        The stochastic rounding's key, in ``[0, 2**64)``.
    num_threads : int or None, default None
        Threads per update; None uses every core. Results do not depend on it.
    synchronize : bool, default True
        For CUDA parameters: wait for the device's result so that errors
        raise in `step`. False (skip the wait) is not implemented yet and
        is refused."""


class _SGDRule(_Optimizer):
    _torch_off = dict(momentum=(0,), dampening=(0,), nesterov=(False,), maximize=(False,),
                      foreach=(None, False), differentiable=(False,), fused=(None, False))
    _state_shapes = {}

    def __init__(self, params: Params, lr: Optional[float] = None, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: Optional[bool] = None,
                 differentiable: bool = False, fused: Optional[bool] = None,
                 weight_decay_mode: DecayMode = "l2", max_norm: Optional[float] = None,
                 constant_norm: Optional[float] = None, norm_type: float = 2.0,
                 norm_eps: float = 1e-7, stochastic_rounding: bool = False, seed: int = 0,
                 num_threads: Optional[int] = None, synchronize: bool = True) -> None:
        defaults = dict(lr=_required() if lr is None else lr,
                        weight_decay=weight_decay, weight_decay_mode=weight_decay_mode,
                        max_norm=max_norm, constant_norm=constant_norm, norm_type=norm_type,
                        norm_eps=norm_eps, stochastic_rounding=stochastic_rounding, seed=seed,
                        num_threads=num_threads)
        torch_keywords = dict(momentum=momentum, dampening=dampening, nesterov=nesterov,
                              maximize=maximize, foreach=foreach, differentiable=differentiable,
                              fused=fused)
        super().__init__(params, defaults, torch_keywords, synchronize)

    def _pack(self, group, step):
        return _options(_KIND_SGD, lr=group["lr"], weight_decay=group["weight_decay"],
                        weight_decay_mode=group["weight_decay_mode"], step=step,
                        **self._common(group))


_SGDRule.__doc__ = """Stochastic gradient descent over sparse (or dense) gradients, with the
    row-norm constraint fused in; torch.optim.SGD's keywords.

    Each step applies `sgd_` to every parameter with a gradient, with
    ``step`` = the parameter's step count::

        w' = w - lr * (g + weight_decay * w)        (weight_decay_mode='l2', torch's)
        w' = (1 - lr * weight_decay) * w - lr * g   ('decoupled')

    to the rows the gradient names only (weight decay is lazy; torch.optim.SGD
    densifies a sparse gradient to apply it), then the constraint.

    Parameters
    ----------
    params : iterable of tensors or dicts
        2-D float16, bfloat16, float32 or float64 CPU tensors, as torch
        takes them (parameter groups may set any option below).
    lr : float
        Required (as in torch 1.13).
    momentum, dampening, nesterov, maximize, foreach, differentiable, fused
        torch's keywords; only their defaults (no momentum...) are accepted,
        anything else is a ValueError.
    weight_decay : float, default 0
    weight_decay_mode : {'l2', 'decoupled', 'none'}, default 'l2'
    """ + _constraint_docs() + """

    Examples
    --------
    >>> import torch, sparsenorm.optim
    >>> emb = torch.nn.Embedding(1000, 16, sparse=True)
    >>> opt = sparsenorm.optim.SGD(emb.parameters(), lr=0.1, max_norm=1.0)
    >>> emb(torch.tensor([3, 5, 3])).sum().backward()
    >>> opt.step()
    >>> bool(emb.weight[3].norm() <= 1.0)
    True
    """


class _AdagradRule(_Optimizer):
    _torch_off = dict(foreach=(None, False), maximize=(False,), differentiable=(False,),
                      fused=(None, False))
    _state_shapes = {"sum": "table"}

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: Optional[bool] = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: Optional[bool] = None,
                 weight_decay_mode: DecayMode = "l2", max_norm: Optional[float] = None,
                 constant_norm: Optional[float] = None, norm_type: float = 2.0,
                 norm_eps: float = 1e-7, stochastic_rounding: bool = False, seed: int = 0,
                 num_threads: Optional[int] = None, synchronize: bool = True) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps,
                        weight_decay_mode=weight_decay_mode, max_norm=max_norm,
                        constant_norm=constant_norm, norm_type=norm_type, norm_eps=norm_eps,
                        stochastic_rounding=stochastic_rounding, seed=seed,
                        num_threads=num_threads)
        torch_keywords = dict(foreach=foreach, maximize=maximize, differentiable=differentiable,
                              fused=fused)
        super().__init__(params, defaults, torch_keywords, synchronize)

    def _pack(self, group, step):
        return _options(_KIND_ADAGRAD, lr=group["lr"], lr_decay=group["lr_decay"],
                        eps=group["eps"], weight_decay=group["weight_decay"],
                        weight_decay_mode=group["weight_decay_mode"], step=step,
                        **self._common(group))


_AdagradRule.__doc__ = """Adagrad over sparse (or dense) gradients, with the row-norm constraint
    fused in; torch.optim.Adagrad's keywords and rule.

    Each step applies `adagrad_` to every parameter with a gradient, with
    ``step`` = the parameter's step count after its increment::

        clr = lr / (1 + (step - 1) * lr_decay)
        g' = g + weight_decay * w                (weight_decay_mode='l2')
        sum += g' ** 2
        w' = w - clr * g' / (sqrt(sum) + eps)

    on the rows the gradient names (torch refuses weight decay with sparse
    gradients; here it is lazy), then the constraint.

    State per parameter: 'step' (int) and 'sum' (the parameter's shape,
    float32, float64 for a float64 parameter), created at construction and
    filled with `initial_accumulator_value`.

    Parameters
    ----------
    params : iterable of tensors or dicts
        2-D float16, bfloat16, float32 or float64 CPU tensors.
    lr : float, default 1e-2
    lr_decay : float, default 0
    weight_decay : float, default 0
    initial_accumulator_value : float, default 0
    eps : float, default 1e-10
    foreach, maximize, differentiable, fused
        torch's keywords; only their defaults are accepted.
    weight_decay_mode : {'l2', 'decoupled', 'none'}, default 'l2'
    """ + _constraint_docs()


class _RowWiseAdagradRule(_Optimizer):
    _torch_off = {}
    _state_shapes = {"sum": "row"}

    def __init__(self, params: Params, lr: float = 0.01, eps: float = 1e-8,
                 weight_decay: float = 0.0, weight_decay_mode: DecayMode = "none", *,
                 max_norm: Optional[float] = None, constant_norm: Optional[float] = None,
                 norm_type: float = 2.0, norm_eps: float = 1e-7, stochastic_rounding: bool = False,
                 seed: int = 0, num_threads: Optional[int] = None,
                 synchronize: bool = True) -> None:
        defaults = dict(lr=lr, eps=eps, weight_decay=weight_decay,
                        weight_decay_mode=weight_decay_mode, max_norm=max_norm,
                        constant_norm=constant_norm, norm_type=norm_type, norm_eps=norm_eps,
                        stochastic_rounding=stochastic_rounding, seed=seed,
                        num_threads=num_threads)
        super().__init__(params, defaults, {}, synchronize)

    def _pack(self, group, step):
        return _options(_KIND_ROWWISE, lr=group["lr"], eps=group["eps"],
                        weight_decay=group["weight_decay"],
                        weight_decay_mode=group["weight_decay_mode"], step=step,
                        **self._common(group))


_RowWiseAdagradRule.__doc__ = """Row-wise Adagrad (FBGEMM's exact row-wise Adagrad) over sparse (or
    dense) gradients, with the row-norm constraint fused in.

    One accumulator per row. Each step applies `rowwise_adagrad_` to every
    parameter with a gradient::

        g' = g + weight_decay * w          ('l2'; only in the mean)
        sum[r] += mean_j(g'[j] ** 2)
        m  = lr / (sqrt(sum[r]) + eps)
        w' = c * w - m * g,  c = 1 - m * weight_decay ('l2'), 1 - lr * weight_decay
                             ('decoupled'), 1 ('none')

    then the constraint. State per parameter: 'step' (int) and 'sum' (shape
    (rows,), float32, float64 for a float64 parameter), created at
    construction at zero.

    Parameters
    ----------
    params : iterable of tensors or dicts
        2-D float16, bfloat16, float32 or float64 CPU tensors.
    lr : float, default 0.01
    eps : float, default 1e-8
    weight_decay : float, default 0.0
        Nonzero needs `weight_decay_mode` 'l2' or 'decoupled'.
    weight_decay_mode : {'none', 'l2', 'decoupled'}, default 'none'
        FBGEMM's WeightDecayMode NONE, L2, DECOUPLE.
    """ + _constraint_docs()


class _SparseAdamRule(_Optimizer):
    _torch_off = dict(maximize=(False,))
    _state_shapes = {"exp_avg": "table", "exp_avg_sq": "table"}

    def __init__(self, params: Params, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 maximize: bool = False, *, weight_decay: float = 0.0,
                 weight_decay_mode: DecayMode = "l2", max_norm: Optional[float] = None,
                 constant_norm: Optional[float] = None, norm_type: float = 2.0,
                 norm_eps: float = 1e-7, stochastic_rounding: bool = False, seed: int = 0,
                 num_threads: Optional[int] = None, synchronize: bool = True) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        weight_decay_mode=weight_decay_mode, max_norm=max_norm,
                        constant_norm=constant_norm, norm_type=norm_type, norm_eps=norm_eps,
                        stochastic_rounding=stochastic_rounding, seed=seed,
                        num_threads=num_threads)
        super().__init__(params, defaults, dict(maximize=maximize), synchronize)

    def _pack(self, group, step):
        return _options(_KIND_ADAM, lr=group["lr"], betas=group["betas"], eps=group["eps"],
                        weight_decay=group["weight_decay"],
                        weight_decay_mode=group["weight_decay_mode"], step=step,
                        **self._common(group))


_SparseAdamRule.__doc__ = """Lazy Adam (torch.optim.SparseAdam's rule) over sparse (or dense)
    gradients, with the row-norm constraint fused in; SparseAdam's keywords.

    Only the moments of the rows a gradient names move. Each step applies
    `sparse_adam_` to every parameter with a gradient, with ``t`` = the
    parameter's step count after its increment::

        exp_avg    += (g - exp_avg) * (1 - beta1)
        exp_avg_sq += (g ** 2 - exp_avg_sq) * (1 - beta2)
        w' = w - lr * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
                 * exp_avg / (sqrt(exp_avg_sq) + eps)

    then the constraint. A dense gradient updates every row (torch's
    SparseAdam refuses it). State per parameter: 'step' (int), 'exp_avg'
    and 'exp_avg_sq' (the parameter's shape, float32, float64 for a float64
    parameter), created at the first step.

    Parameters
    ----------
    params : iterable of tensors or dicts
        2-D float16, bfloat16, float32 or float64 CPU tensors.
    lr : float, default 1e-3
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    maximize
        torch's keyword; only False is accepted.
    weight_decay : float, default 0.0
        Lazy (named rows only); torch's SparseAdam has none.
    weight_decay_mode : {'l2', 'decoupled', 'none'}, default 'l2'
        'decoupled' is AdamW's form.
    """ + _constraint_docs()


if TYPE_CHECKING:  # what __getattr__ below makes, for type checkers
    import torch

    class SGD(_SGDRule, torch.optim.Optimizer): ...
    class Adagrad(_AdagradRule, torch.optim.Optimizer): ...
    class RowWiseAdagrad(_RowWiseAdagradRule, torch.optim.Optimizer): ...
    class SparseAdam(_SparseAdamRule, torch.optim.Optimizer): ...

_RULES = {"SGD": _SGDRule, "Adagrad": _AdagradRule, "RowWiseAdagrad": _RowWiseAdagradRule,
          "SparseAdam": _SparseAdamRule}


def __getattr__(name: str) -> Any:
    """SGD, Adagrad, RowWiseAdagrad and SparseAdam, made on first use:
    each is its rule class combined with torch.optim.Optimizer."""
    rule = _RULES.get(name)
    if rule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    torch = _torch()
    cls = type(name, (rule, torch.optim.Optimizer),
               {"__module__": __name__, "__qualname__": name, "__doc__": rule.__doc__})
    globals()[name] = cls  # later look-ups find it without this function
    return cls


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_RULES))


__all__ = ["Adagrad", "RowStats", "RowWiseAdagrad", "SGD", "SparseAdam", "adagrad_",
           "rowwise_adagrad_", "sgd_", "sparse_adam_"]
