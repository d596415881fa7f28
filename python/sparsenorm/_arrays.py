"""Getting arrays into the compiled core through DLPack, without copies.

The table (or matrix) is exported with its producer's ``__dlpack__``; the
capsule points at the caller's own memory, so the core writes into the very
array the caller holds. Arrays that cannot be exported that way are refused
with a TypeError: a silent copy would leave the caller's array unchanged.

CUDA arrays are processed on their own device, on the current stream of the
library that owns them (PyTorch's ``torch.cuda.current_stream``, CuPy's
``cupy.cuda.get_current_stream``). That stream is also the one passed to
``__dlpack__``, so the producer orders its pending work before ours.
"""

import sys

import numpy as np

from . import _core

# DLPack device types (dlpack.h).
_CPU, _CUDA, _CUDA_HOST, _CUDA_MANAGED = 1, 2, 3, 13
_HOST = (_CPU, _CUDA_HOST)
_DEVICE = (_CUDA, _CUDA_MANAGED)


def describe(obj):
    """'numpy.ndarray of dtype float32 and shape (3, 4)' and the like."""
    t = type(obj)
    module = t.__module__.split(".")[0]
    text = t.__name__ if module == "builtins" else f"{module}.{t.__name__}"
    dtype, shape = getattr(obj, "dtype", None), getattr(obj, "shape", None)
    if dtype is not None and shape is not None:
        text += f" of dtype {str(dtype).replace('torch.', '')} and shape {tuple(shape)}"
    return text


def _owner(array):
    return type(array).__module__.split(".")[0]


class Exported:
    """A DLPack capsule of one array and where that array lives."""

    __slots__ = ("capsule", "device_type", "device_id", "stream", "torch_tensor")

    def __init__(self, capsule, device_type, device_id, stream, torch_tensor):
        self.capsule = capsule
        self.device_type = device_type
        self.device_id = device_id
        self.stream = stream
        self.torch_tensor = torch_tensor

    def mark_modified(self):
        """Tells autograd that a PyTorch tensor changed in place.

        The core writes through a raw pointer, which PyTorch cannot see. An
        in-place no-op on an empty view bumps the version counter the view
        shares with the tensor, so a backward pass that saved the old values
        fails loudly, as it would after torch.embedding_renorm_.
        """
        t = self.torch_tensor
        if t is not None and not t.is_inference():
            t.detach()[:0].add_(0)


def _owner_stream(array, device_id):
    """The current CUDA stream of the library that owns `array`, as an int."""
    owner = _owner(array)
    if owner == "torch":
        import torch

        return torch.cuda.current_stream(device_id).cuda_stream
    if owner == "cupy":
        import cupy

        with cupy.cuda.Device(device_id):
            return cupy.cuda.get_current_stream().ptr
    return 0  # an owner we do not know: its work is ordered on the legacy default stream


def _device(array, name):
    if _owner(array) == "torch" and array.device.type == "cpu":
        return _CPU, 0  # torch's __dlpack_device__ is Python code: skip it where we can
    try:
        device_type, device_id = array.__dlpack_device__()
    except Exception as e:  # noqa: BLE001 - any failure means the same to the caller
        raise TypeError(f"{name} ({describe(array)}) does not report its DLPack device: {e}") from e
    device_type, device_id = int(device_type), int(device_id)
    if device_type in _DEVICE and not _core.HAS_CUDA:
        raise TypeError(f"{name} is on CUDA device {device_id}, but this sparsenorm module was "
                        "built without CUDA support.")
    return device_type, device_id


_FLOAT_DTYPES = _core.DTYPES  # narrowest first


def _dtype_text(array):
    return str(getattr(array, "dtype", "unknown")).replace("torch.", "")


def _capsule(array, name, device_type, device_id, values):
    stream = None
    try:
        if device_type in _DEVICE:
            stream = _owner_stream(array, device_id)
            # DLPack reserves 0; 1 names the legacy default stream.
            return array.__dlpack__(stream=stream if stream != 0 else 1), stream
        return array.__dlpack__(), stream
    except (BufferError, RuntimeError, TypeError, ValueError) as e:
        # DLPack refuses some dtypes (bool, byte-swapped) itself; say it in
        # the words of the core's dtype checks, which see all the others.
        dtype = _dtype_text(array)
        if values and dtype not in _FLOAT_DTYPES:
            names = ", ".join(_FLOAT_DTYPES[:-1]) + " and " + _FLOAT_DTYPES[-1]
            raise TypeError(f"{name} has dtype {dtype}; sparsenorm handles {names}.") from e
        if not values and dtype not in ("int32", "int64"):
            raise TypeError(f"{name} has dtype {dtype}; index arrays must hold int32 or int64 "
                            "values.") from e
        raise TypeError(f"{name} ({describe(array)}) cannot be shared through DLPack without a "
                        f"copy: {e}") from e


def export_target(array, name, values=True):
    """Exports an array that sparsenorm will modify in place: values (a
    floating-point table or matrix), or with values=False a sparse matrix's
    index array that pruning compacts."""
    torch_tensor = None
    if isinstance(array, np.ndarray):  # the common case first: a few microseconds count
        if not array.flags.writeable:
            raise ValueError(f"{name} is a read-only NumPy array; sparsenorm modifies it in "
                             "place.")
        try:
            return Exported(array.__dlpack__(), _CPU, 0, None, None)
        except BufferError:
            pass  # described by _capsule below
    elif not hasattr(array, "__dlpack__"):
        raise TypeError(f"{name} must be an array that sparsenorm can modify in place through "
                        f"DLPack (a NumPy array, a PyTorch tensor, a CuPy array); got "
                        f"{describe(array)}.")
    elif _owner(array) == "torch":
        torch_tensor = array
        if array.requires_grad:
            if sys.modules["torch"].is_grad_enabled():
                raise RuntimeError(
                    f"{name} requires grad and gradient recording is on; modify it inside "
                    "`with torch.no_grad():`, as torch.embedding_renorm_ requires too.")
            array = array.detach()  # the same storage, exportable
    device_type, device_id = _device(array, name)
    capsule, stream = _capsule(array, name, device_type, device_id, values)
    return Exported(capsule, device_type, device_id, stream, torch_tensor)


def _to_device_like(index_array, target, exported):
    """Host indices moved to the CUDA device of the target (part of the CUDA seam)."""
    owner = _owner(target)
    if owner == "torch":
        import torch

        return torch.as_tensor(index_array, device=target.device)
    if owner == "cupy":
        import cupy

        with cupy.cuda.Device(exported.device_id):
            return cupy.asarray(index_array)
    raise TypeError(f"the indices are in CPU memory but the table ({describe(target)}) is on CUDA "
                    f"device {exported.device_id}; pass the indices on the table's device.")


def _check_int64_range(sequence, name):
    limit = np.iinfo(np.int64)
    try:
        values = np.asarray(sequence, dtype=object).reshape(-1).tolist()
    except (TypeError, ValueError):
        return
    for position, value in enumerate(values):
        if isinstance(value, int) and not limit.min <= value <= limit.max:
            raise IndexError(f"{name}[{position}] = {value} is out of range: it does not fit in "
                             "a 64-bit index.")


def export_indices(indices, name, target=None, exported=None):
    """Exports an index list: an int32/int64 array of any shape, or a sequence.

    The library only reads index lists, so where the caller's list cannot be
    passed as it lies (a Python sequence, a read-only NumPy array), a copy is
    passed instead; nobody can tell the difference.
    """
    on_device = exported is not None and exported.device_type in _DEVICE
    if isinstance(indices, np.ndarray):
        if not indices.flags.writeable:
            indices = indices.copy()  # DLPack in NumPy 1.24 cannot export read-only arrays
        if not on_device:
            try:
                return indices.__dlpack__()
            except BufferError:
                pass  # described by _capsule below
    elif not hasattr(indices, "__dlpack__"):
        if isinstance(indices, (float, complex, str, bytes)):
            raise TypeError(f"{name} must be an integer array or a sequence of integers; got "
                            f"{describe(indices)}.")
        try:
            array = np.asarray(indices)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name} must be an integer array or a sequence of integers: {e}") from e
        if array.size == 0:
            array = np.zeros(array.shape, dtype=np.int64)
        if array.dtype.kind not in "i":
            # NumPy turns Python ints beyond int64 into uint64, float64 or
            # object arrays: such an index is out of range of any table.
            _check_int64_range(indices, name)
        if array.dtype.kind not in "iu":
            raise TypeError(f"{name} must be an integer array or a sequence of integers; got "
                            f"{describe(indices)} holding {array.dtype} values.")
        indices = array
    if on_device and int(indices.__dlpack_device__()[0]) in _HOST:
        indices = _to_device_like(indices, target, exported)
    device_type, device_id = _device(indices, name)
    capsule, _ = _capsule(indices, name, device_type, device_id, values=False)
    return capsule


def export_read_only(array, name):
    """Exports a 1-D array the core only reads (sparse index arrays without pruning)."""
    return export_indices(array, name)
