"""The module on CUDA arrays (PyTorch tensors and CuPy arrays): the same
results as the CPU path on the same data, in place, on the array's own
stream. Skipped where the module has no CUDA path or there is no GPU."""

import math

import numpy as np
import pytest
import torch

import sparsenorm

if not sparsenorm.has_cuda:
    pytest.skip("this sparsenorm module was built without the CUDA path", allow_module_level=True)
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)

try:
    import cupy
except ImportError:  # CuPy is optional: the PyTorch tests still run
    cupy = None

needs_cupy = pytest.mark.skipif(cupy is None, reason="CuPy is not installed")

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def random_table(rng, rows, cols, dtype):
    scale = rng.uniform(0.1, 4.0, size=(rows, 1))
    return torch.from_numpy(rng.standard_normal((rows, cols)) * scale).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
@pytest.mark.parametrize("cols", [1, 33, 128])
def test_rows_on_torch_cuda_match_cpu(dtype, p, cols):
    rng = np.random.default_rng(cols + int(min(p, 9)))
    host = random_table(rng, 500, cols, dtype)
    idx = torch.from_numpy(rng.integers(0, 500, size=800))  # with repeats
    expected = host.clone()
    cpu_stats = sparsenorm.normalize_rows_(expected, idx, max_norm=1.5, p=p)
    device = host.cuda()
    ptr = device.data_ptr()
    gpu_stats = sparsenorm.normalize_rows_(device, idx.cuda(), max_norm=1.5, p=p)
    assert device.data_ptr() == ptr  # in place, no copy
    got = device.cpu()
    # The device sums in another order: a few ulps of the storage type.
    tol = {torch.float64: 1e-13, torch.float32: 1e-6}.get(dtype, 1e-2)
    assert torch.allclose(got.double(), expected.double(), rtol=tol, atol=tol)
    assert gpu_stats.distinct_rows == cpu_stats.distinct_rows
    assert gpu_stats.rows_scaled == cpu_stats.rows_scaled


def test_host_indices_move_to_the_table_device():
    rng = np.random.default_rng(1)
    table = random_table(rng, 64, 16, torch.float32).cuda()
    before = table.clone()
    stats = sparsenorm.normalize_rows_(table, np.array([3, 5, 3]), max_norm=0.5)
    assert stats.distinct_rows == 2
    assert torch.equal(table[[0, 1, 2, 4]], before[[0, 1, 2, 4]])
    assert torch.all(table[[3, 5]].norm(dim=1) <= 0.5 * (1 + 1e-6))


def test_runs_on_the_current_torch_stream():
    rng = np.random.default_rng(2)
    table = random_table(rng, 10000, 64, torch.float32).cuda()
    expected = table.cpu()
    idx = torch.arange(0, 10000, 3)
    sparsenorm.normalize_rows_(expected, idx, max_norm=1.0)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        table.mul_(1.0)  # queued on `side` before our call
        sparsenorm.normalize_rows_(table, idx.cuda(), max_norm=1.0)
    side.synchronize()
    assert torch.allclose(table.cpu(), expected, rtol=1e-6, atol=1e-7)


def test_bad_index_on_device_leaves_the_table_unchanged():
    table = torch.randn(50, 8, device="cuda")
    before = table.clone()
    with pytest.raises(IndexError, match="50"):
        sparsenorm.normalize_rows_(table, torch.tensor([1, 50], device="cuda"))
    assert torch.equal(table, before)


def test_embedding_renorm_matches_torch_on_cuda():
    rng = np.random.default_rng(3)
    w = random_table(rng, 1000, 64, torch.float32).cuda()
    ours = w.clone()
    idx = torch.from_numpy(rng.integers(0, 1000, size=3000)).cuda()
    torch.embedding_renorm_(w, idx, 1.0, 2.0)
    sparsenorm.embedding_renorm_(ours, idx, 1.0, 2.0)
    assert torch.allclose(ours, w, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("axis", [0, 1])
def test_dense_matrix_on_torch_cuda_matches_cpu(axis):
    rng = np.random.default_rng(4 + axis)
    host = random_table(rng, 300, 70, torch.float32)
    expected = host.clone()
    sparsenorm.normalize(expected, axis=axis)
    device = host.cuda()
    sparsenorm.normalize(device, axis=axis)
    assert torch.allclose(device.cpu(), expected, rtol=1e-6, atol=1e-7)


@needs_cupy
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_rows_on_cupy_match_numpy(dtype):
    rng = np.random.default_rng(5)
    host = (rng.standard_normal((400, 48)) * 3).astype(dtype)
    idx = rng.integers(0, 400, size=600)
    expected = host.copy()
    sparsenorm.normalize_rows_(expected, idx, max_norm=1.0)
    device = cupy.asarray(host)
    sparsenorm.normalize_rows_(device, cupy.asarray(idx), max_norm=1.0)
    tol = {np.float64: 1e-13, np.float32: 1e-6}.get(dtype, 1e-3)
    np.testing.assert_allclose(cupy.asnumpy(device).astype(np.float64), expected.astype(np.float64),
                               rtol=tol, atol=tol)


@needs_cupy
def test_dense_matrix_on_cupy_matches_numpy():
    rng = np.random.default_rng(6)
    host = rng.standard_normal((200, 90)).astype(np.float32)
    expected = host.copy()
    sparsenorm.normalize(expected, axis=0)
    device = cupy.asarray(host)
    sparsenorm.normalize(device, axis=0)
    np.testing.assert_allclose(cupy.asnumpy(device), expected, rtol=1e-6, atol=1e-7)
