"""Helpers shared by the sparsenorm module's tests (tests/python/test_module_*.py)."""

import numpy as np
import torch

MANTISSA_BITS = {torch.float32: 23, torch.float64: 52, torch.bfloat16: 7, torch.float16: 10}
MIN_EXPONENT = {torch.float32: -126, torch.float64: -1022, torch.bfloat16: -126,
                torch.float16: -14}
TORCH_DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
NUMPY_DTYPES = [np.float32, np.float64, np.float16]


def as_torch(x):
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def ulps(a, b, dtype=None):
    """max |a - b| in units in the last place of dtype at the larger magnitude."""
    a, b = as_torch(a), as_torch(b)
    dtype = dtype or a.dtype
    a, b = a.double(), b.double()
    if a.numel() == 0:
        return 0.0
    m = torch.maximum(a.abs(), b.abs()).clamp_min(1e-300)
    exponent = torch.floor(torch.log2(m)).clamp_min(MIN_EXPONENT[dtype])
    return ((a - b).abs() / torch.exp2(exponent - MANTISSA_BITS[dtype])).max().item()


def float64_oracle(base, idx, max_norm, p, eps=1e-7, constant=False):
    """The row rule computed in float64 with torch, then rounded to base's dtype."""
    base = as_torch(base)
    w = base.double().clone()
    for r in sorted(set(np.asarray(idx).reshape(-1).tolist())):
        n = torch.linalg.vector_norm(w[r], ord=p).item()
        if (constant and n > 0) or (not constant and n > max_norm):
            w[r] *= max_norm / (n + eps)
    return w.to(base.dtype)


def random_table(rng, rows, cols, dtype):
    """Rows of norms spread over decades. float16 stays small: torch computes
    a float16 row's norm in float16, so its sum |x|^p overflows long before the
    values do (see test_c_api.py)."""
    high = 0 if dtype == torch.float16 else 2
    scales = 10.0 ** rng.uniform(-2, high, size=(rows, 1))
    return torch.from_numpy(rng.standard_normal((rows, cols)) * scales).to(dtype)


def snapshot(x):
    """The exact bytes of an array or tensor, strides included."""
    if isinstance(x, np.ndarray):
        return np.frombuffer(x.tobytes(), dtype=np.uint8), x.strides
    t = x
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    elif t.dtype == torch.float32:
        t = t.view(torch.int32)
    elif t.dtype == torch.float64:
        t = t.view(torch.int64)
    return t.clone().numpy(), t.stride()


def unchanged(x, before):
    now = snapshot(x)
    return np.array_equal(now[0], before[0]) and now[1] == before[1]
