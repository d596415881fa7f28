"""sparsenorm: renormalize rows or columns of weight matrices, in place, on every core.

Functions
---------
normalize_rows_(table, indices, max_norm=1.0, p=2.0, eps=1e-12)
    Max-norm constraint on the indexed rows of a table (Caffe2's
    SparseNormalize); returns RowStats.
set_row_norms_(table, indices, norm=1.0, p=2.0, eps=1e-12)
    The constant-norm form: the indexed rows scaled to norm `norm`.
normalize_rows_many_(tables, indices, max_norm=1.0, ...)
    normalize_rows_ on many tables (one index list each) in one call.
embedding_renorm_(weight, indices, max_norm, norm_type=2.0)
    A drop-in for torch.embedding_renorm_.
normalize(X, norm='l2', axis=0)
    Every column (or row) of a dense or scipy.sparse matrix scaled to unit
    norm, like sklearn.preprocessing.normalize but in place.

Submodules
----------
optim
    The training step: sparse SGD, Adagrad, row-wise Adagrad and lazy Adam
    with the row-norm constraint fused in, as functions over arrays and as
    torch.optim.Optimizer subclasses (PyTorch is imported only when those
    are used).
distributed
    normalize_rows_ and normalize on tables and matrices sharded across
    processes, over an mpi4py communicator or a torch.distributed group
    (import sparsenorm.distributed).

Arrays are shared with NumPy, PyTorch and other DLPack libraries without
copies: the array you pass is the array that changes. Functions whose name
ends in an underscore work in place, as in PyTorch.
"""

from . import _core, optim
from ._matrix import MatrixStats, normalize
from ._rows import (RowStats, embedding_renorm_, normalize_rows_, normalize_rows_many_,
                    set_row_norms_)

__version__ = _core.__version__

NonFiniteError = _core.NonFiniteError

has_cuda = _core.HAS_CUDA
"""True when this build can work on CUDA arrays."""


def default_thread_count() -> int:
    """The number of threads a call with num_threads=None uses."""
    return _core.default_thread_count()


def simd_target() -> str:
    """The SIMD instruction set the CPU kernels dispatch to on this machine, e.g. 'AVX2'."""
    return _core.simd_target()


for _f in (normalize_rows_, normalize_rows_many_, set_row_norms_, embedding_renorm_, normalize,
           RowStats, MatrixStats):
    _f.__module__ = __name__
del _f

__all__ = [
    "MatrixStats",
    "NonFiniteError",
    "RowStats",
    "default_thread_count",
    "embedding_renorm_",
    "has_cuda",
    "normalize",
    "normalize_rows_",
    "normalize_rows_many_",
    "optim",
    "set_row_norms_",
    "simd_target",
]
