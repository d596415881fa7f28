"""sparsenorm.distributed through torch.distributed: gloo process groups of 2
to 4 processes on 127.0.0.1, spawned by each test.

Every process builds the same global table from the same seed and keeps its
shard; the result is compared with torch.embedding_renorm_ (and the
single-process sparsenorm call) on the whole table. Each process returns its
failures through a queue; the test asserts on all of them.
"""

import math
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = torch.distributed
if not dist.is_available():
    pytest.skip("this PyTorch has no torch.distributed", allow_module_level=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_table(rng, rows, cols):
    scales = 10.0 ** rng.uniform(-2, 2, (rows, 1)) / math.sqrt(max(cols, 1))
    return (rng.standard_normal((rows, cols)) * scales).astype(np.float32)


def column_cuts(cols, rng, world):
    cuts = [0, *np.sort(rng.integers(0, cols + 1, world - 1)).tolist(), cols]
    if world >= 3:
        cuts[2] = cuts[1]  # rank 1 holds no column
    return cuts


def scenario(rank, world):
    import sparsenorm
    import sparsenorm.distributed as snd

    failures = []
    rng = np.random.default_rng(31)  # the same on every process
    group = dist.new_group(list(range(world)))
    for trial in range(12):
        rows, cols = int(rng.integers(1, 40)), int(rng.integers(0, 24))
        whole = random_table(rng, rows, cols)
        count = 0 if trial % 5 == 0 else int(rng.integers(1, 50))
        indices = torch.from_numpy(rng.integers(0, rows, count))
        want = torch.from_numpy(whole.copy())
        with torch.no_grad():
            torch.embedding_renorm_(want, indices, 1.0, 2.0)
        cuts = column_cuts(cols, rng, world)
        c0, c1 = cuts[rank], cuts[rank + 1]
        # Tensors with comm=None (the default group), NumPy with the group.
        mine = torch.from_numpy(whole[:, c0:c1].copy())
        snd.normalize_rows_(mine, indices, max_norm=1.0, eps=1e-7,
                            comm=None if trial % 2 == 0 else group)
        if not torch.allclose(mine, want[:, c0:c1], rtol=1e-5, atol=0):
            failures.append(f"trial {trial}: differs from torch.embedding_renorm_")

    # Row layout, cyclic: the single-process result bit for bit.
    whole = random_table(rng, 37, 5)
    indices = rng.integers(0, 37, 30)
    want = whole.copy()
    sparsenorm.normalize_rows_(want, indices, 0.7)
    members = np.arange(rank, 37, world)
    shard = torch.from_numpy(whole[members].copy())
    snd.normalize_rows_(shard, indices, max_norm=0.7, layout="row", cyclic=True)
    if not np.array_equal(shard.numpy().view(np.uint32), want[members].view(np.uint32)):
        failures.append("row layout differs from the single-process result")

    # The founding formula on row blocks of a matrix (axis 0), against
    # scikit-learn on the whole matrix.
    try:
        from sklearn.preprocessing import normalize as sk_normalize
    except ImportError:
        sk_normalize = None
    if sk_normalize is not None:
        matrix = rng.standard_normal((23, 6))
        cuts = column_cuts(23, rng, world)
        block = torch.from_numpy(matrix[cuts[rank]:cuts[rank + 1]].copy())
        snd.normalize(block, "l2", axis=0)
        want = sk_normalize(matrix, "l2", axis=0)[cuts[rank]:cuts[rank + 1]]
        if not np.allclose(block.numpy(), want, rtol=1e-13, atol=0):
            failures.append("matrix block differs from sklearn.preprocessing.normalize")

        # SciPy CSR row blocks (axis 0, pruned: a new block) and CSC column
        # blocks (axis 1, in place), one process holding no row (column).
        from scipy import sparse as scipy_sparse
        matrix = scipy_sparse.random(29, 7, density=0.4, format="csr", random_state=5)
        for axis in (0, 1):
            cuts = column_cuts(matrix.shape[axis], rng, world)
            b, e = cuts[rank], cuts[rank + 1]
            layout = matrix if axis == 0 else matrix.tocsc()
            block = layout[b:e] if axis == 0 else layout[:, b:e]
            kwargs = dict(prune_below=0.05) if axis == 0 else {}
            got = snd.normalize(block, "l2", axis=axis, comm=group, **kwargs)
            want = sparsenorm.normalize(layout.copy(), "l2", axis=axis, **kwargs)
            want = (want[b:e] if axis == 0 else want[:, b:e]).toarray()
            theirs = sk_normalize(matrix, "l2", axis=axis).toarray()
            theirs = theirs[b:e] if axis == 0 else theirs[:, b:e]
            mine = got.toarray()
            if not np.allclose(mine, want, rtol=1e-13, atol=0):
                failures.append(f"sparse axis {axis}: differs from sparsenorm.normalize")
            keep = (mine != 0) & (theirs != 0) if kwargs else np.ones(mine.shape, bool)
            if not np.allclose(mine[keep], theirs[keep], rtol=1e-13, atol=0):
                failures.append(f"sparse axis {axis}: differs from sklearn.preprocessing.normalize")
            if (got is block) == bool(kwargs):
                failures.append(f"sparse axis {axis}: pruned in place or copied without pruning")

    # A bad index on the last process: every process raises the same error,
    # no shard changes.
    original = whole[:, rank:rank + 1].copy()
    t = original.copy()
    bad = np.array([1, 2, 3])
    if rank == world - 1:
        bad[1] = 37
    try:
        snd.normalize_rows_(t, bad, max_norm=1e-3)
        got = ("ok", "")
    except Exception as e:  # noqa: BLE001 - compared across processes below
        got = (type(e).__name__, str(e))
    everyone = [None] * world
    dist.all_gather_object(everyone, got)
    if got[0] != "IndexError" or f"rank {world - 1} of {world}: indices[1] = 37" not in got[1]:
        failures.append(f"bad index: {got}")
    if any(o != got for o in everyone):
        failures.append(f"processes disagree: {everyone}")
    if not np.array_equal(t, original):
        failures.append("bad index: the shard changed")
    return failures


def worker(rank, world, port, queue):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        failures = scenario(rank, world)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        failures = [f"raised {type(e).__name__}: {e}"]
    finally:
        dist.destroy_process_group()
    queue.put((rank, failures))


@pytest.mark.parametrize("world", [2, 3, 4])
def test_gloo_process_group(world):
    context = torch.multiprocessing.get_context("spawn")
    queue = context.SimpleQueue()
    torch.multiprocessing.spawn(worker, args=(world, free_port(), queue), nprocs=world, join=True)
    results = dict(queue.get() for _ in range(world))
    assert sorted(results) == list(range(world))
    assert not any(results.values()), results


# ---------------------------------------------------------------------------
# The optimizer steps on a column-sharded table through a gloo group:
# row-wise Adagrad against sparsenorm.optim's on the whole table (within
# the bound, the replicas of the row sum identical), SGD bit for bit, and a
# NaN gradient element on the last process left on every process.

def step_scenario(rank, world):
    import sparsenorm.distributed as snd
    import sparsenorm.optim as so

    failures = []
    rng = np.random.default_rng(57)  # the same on every process
    rows, cols = 25, 11
    whole = random_table(rng, rows, cols)
    total = rng.uniform(0, 0.1, rows).astype(np.float32)
    indices = torch.from_numpy(rng.integers(0, rows, 40))
    values = rng.standard_normal((40, cols)).astype(np.float32)
    c0, c1 = column_cuts(cols, rng, world)[rank:rank + 2]
    grad = torch.from_numpy(values[:, c0:c1].copy())

    want, want_total = whole.copy(), total.copy()
    so.rowwise_adagrad_(want, want_total, indices, values, lr=0.1, max_norm=0.5)
    mine, mine_total = torch.from_numpy(whole[:, c0:c1].copy()), torch.from_numpy(total.copy())
    stats = snd.rowwise_adagrad_(mine, mine_total, indices, grad, lr=0.1, max_norm=0.5)
    if not np.allclose(mine.numpy(), want[:, c0:c1], rtol=1e-5, atol=1e-6):
        failures.append("row-wise Adagrad differs from the single-process step")
    replicas = [None] * world
    dist.all_gather_object(replicas, mine_total.numpy().tobytes())
    if any(r != replicas[0] for r in replicas) or not np.allclose(mine_total.numpy(), want_total,
                                                                 rtol=1e-6):
        failures.append("the replicas of the row sum differ")
    if stats.distinct_rows != len(set(indices.tolist())):
        failures.append(f"stats {stats}")

    want = whole.copy()
    so.sgd_(want, indices, values, lr=0.1, weight_decay=0.01)
    mine = torch.from_numpy(whole[:, c0:c1].copy())
    snd.sgd_(mine, indices, grad, lr=0.1, weight_decay=0.01)
    if not np.array_equal(mine.numpy(), want[:, c0:c1]):
        failures.append("SGD is not the single-process step bit for bit")

    poisoned = values.copy()
    poisoned[3, cols - 1] = np.nan  # the last process's column
    mine = torch.from_numpy(whole[:, c0:c1].copy())
    stats = snd.sgd_(mine, indices, torch.from_numpy(poisoned[:, c0:c1].copy()), lr=0.1)
    row = int(indices[3])
    if stats.nonfinite_rows != 1 or not np.array_equal(mine.numpy()[row], whole[row, c0:c1]):
        failures.append(f"NaN on the last process: {stats}")
    return failures


def step_worker(rank, world, port, queue):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        failures = step_scenario(rank, world)
    except Exception as e:  # noqa: BLE001 - reported to the parent
        failures = [f"raised {type(e).__name__}: {e}"]
    finally:
        dist.destroy_process_group()
    queue.put((rank, failures))


def test_optimizer_steps_on_a_gloo_process_group():
    world = 3  # rank 1 holds no column
    context = torch.multiprocessing.get_context("spawn")
    queue = context.SimpleQueue()
    torch.multiprocessing.spawn(step_worker, args=(world, free_port(), queue), nprocs=world,
                                join=True)
    results = dict(queue.get() for _ in range(world))
    assert sorted(results) == list(range(world))
    assert not any(results.values()), results
