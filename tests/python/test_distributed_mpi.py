"""sparsenorm.distributed through mpi4py, run by ctest under mpirun with 1 to 4
processes (each runs this file; every test is collective).

Every process builds the same global table from the same seed, keeps its
shard, and compares what the distributed call left in it with the
single-process sparsenorm.normalize_rows_ on the whole table. A test
collects its own failures and all processes compare them before asserting,
so that one process failing does not leave the others waiting in a
collective.
"""

import math

import numpy as np
import pytest

import sparsenorm
import sparsenorm.distributed as snd

MPI = pytest.importorskip("mpi4py.MPI")
COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()


def agree(failures):
    everyone = COMM.allgather(failures)
    assert not any(everyone), everyone


def column_cuts(cols, rng):
    cuts = np.sort(rng.integers(0, cols + 1, SIZE - 1))
    cuts = [0, *cuts.tolist(), cols]
    if SIZE >= 3:
        cuts[2] = cuts[1]  # rank 1 holds no column
    return cuts


def random_table(rng, rows, cols, dtype):
    scales = 10.0 ** rng.uniform(-2, 2, (rows, 1)) / math.sqrt(max(cols, 1))
    return (rng.standard_normal((rows, cols)) * scales).astype(dtype)


def ulps(a, b):
    """Units in the last place between two float arrays of the same dtype."""
    kind = np.int32 if a.dtype == np.float32 else np.int64
    ia, ib = a.view(kind).astype(np.int64), b.view(kind).astype(np.int64)
    lowest = np.iinfo(kind).min
    ia = np.where(ia < 0, lowest - ia, ia)
    ib = np.where(ib < 0, lowest - ib, ib)
    return np.abs(ia - ib)


def outcome(call):
    try:
        return ("ok", call())
    except Exception as e:  # noqa: BLE001 - the test compares what every process saw
        return (type(e).__name__, str(e))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_column_layout_matches_the_single_process_call(dtype):
    rng = np.random.default_rng(20261207)  # the same on every process
    failures = []
    for trial in range(25):
        rows, cols = int(rng.integers(1, 40)), int(rng.integers(0, 30))
        whole = random_table(rng, rows, cols, dtype)
        count = 0 if trial % 6 == 0 else int(rng.integers(1, 60))
        indices = rng.integers(0, rows, count)
        p = [2.0, 1.0, math.inf, 3.0][trial % 4]
        max_norm = float(rng.uniform(0.2, 2.0))
        cuts = column_cuts(cols, rng)
        want = whole.copy()
        want_stats = sparsenorm.normalize_rows_(want, indices, max_norm, p)
        c0, c1 = cuts[RANK], cuts[RANK + 1]
        mine = whole[:, c0:c1].copy()
        stats = snd.normalize_rows_(mine, indices, max_norm=max_norm, p=p, comm=COMM)
        if stats != want_stats._replace(rows_scaled=stats.rows_scaled):
            failures.append(f"trial {trial}: stats {stats} vs {want_stats}")
        tolerance = 0 if SIZE == 1 else 16
        worst = int(ulps(mine, want[:, c0:c1]).max(initial=0))
        if worst > tolerance:
            failures.append(f"trial {trial}: {worst} ulps from the single-process result")
        again = whole[:, c0:c1].copy()
        snd.normalize_rows_(again, indices, max_norm=max_norm, p=p, comm=COMM)
        if not np.array_equal(again.view(np.uint8), mine.view(np.uint8)):
            failures.append(f"trial {trial}: a second run differs")
    agree(failures)


def test_two_step_exchange_gives_the_one_step_bits(monkeypatch):
    rng = np.random.default_rng(8)
    whole = random_table(rng, 50, 2 * SIZE + 3, np.float32)
    indices = rng.integers(0, 50, 70)
    cuts = column_cuts(whole.shape[1], rng)
    results = []
    for two_step_from in (2, 10 ** 6):  # two-step at every size, then never
        monkeypatch.setattr(snd, "_TWO_STEP_PROCESSES", two_step_from)
        mine = whole[:, cuts[RANK]:cuts[RANK + 1]].copy()
        snd.normalize_rows_(mine, indices, max_norm=0.3, comm=COMM)
        matrix = whole[:10 + RANK].copy()  # row blocks of unequal heights
        snd.normalize(matrix, "l2", axis=0, comm=COMM)
        results.append((mine, matrix))
    failures = []
    for a, b in zip(results[0], results[1]):
        if not np.array_equal(a.view(np.uint8), b.view(np.uint8)):
            failures.append("the two-step exchange changed the result")
    agree(failures)


def test_column_layout_on_torch_tensors_matches_embedding_renorm():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    whole = random_table(rng, 30, 17, np.float32)
    indices = rng.integers(0, 30, 40)
    want = torch.from_numpy(whole.copy())
    with torch.no_grad():
        torch.embedding_renorm_(want, torch.from_numpy(indices), 1.0, 2.0)
    cuts = column_cuts(17, rng)
    mine = torch.from_numpy(whole[:, cuts[RANK]:cuts[RANK + 1]].copy())
    snd.normalize_rows_(mine, torch.from_numpy(indices), max_norm=1.0, eps=1e-7, comm=COMM)
    failures = []
    if not torch.allclose(mine, want[:, cuts[RANK]:cuts[RANK + 1]], rtol=1e-5, atol=0):
        failures.append("differs from torch.embedding_renorm_")
    agree(failures)


def test_decisions_at_a_norm_exactly_at_the_bound():
    if SIZE > 4:
        pytest.skip("rows written for 1 to 4 processes")
    row = [[5.0], [3.0, 4.0], [2.0, 4.0, 4.0], [1.0, 1.0, 1.0, 1.0]][SIZE - 1]
    norm = [5.0, 5.0, 6.0, 2.0][SIZE - 1]
    failures = []
    for max_norm in (norm, math.nextafter(norm, 0.0)):
        whole = np.tile(np.array(row, dtype=np.float32), (3, 1))
        want = whole.copy()
        want_stats = sparsenorm.normalize_rows_(want, [2, 0], max_norm)
        mine = whole[:, RANK:RANK + 1].copy()
        stats = snd.normalize_rows_(mine, [2, 0], max_norm=max_norm, comm=COMM)
        if want_stats.rows_scaled != (0 if max_norm == norm else 2):
            failures.append(f"single-process decision at {max_norm}")
        if stats.rows_scaled != want_stats.rows_scaled:
            failures.append(f"rows scaled {stats.rows_scaled} at {max_norm}")
        if not np.array_equal(mine.view(np.uint32), want[:, RANK:RANK + 1].view(np.uint32)):
            failures.append(f"bits differ at {max_norm}")
    agree(failures)


def block(global_rows, k):
    """Uneven blocks: rank 0 holds none when there are two processes or more."""
    if SIZE == 1:
        return 0, global_rows
    per = global_rows // (SIZE - 1)
    if k == 0:
        return 0, 0
    return min(global_rows, per * (k - 1)), global_rows if k == SIZE - 1 else min(global_rows, per * k)


@pytest.mark.parametrize("cyclic", [False, True])
def test_row_layout_matches_the_single_process_call(cyclic):
    rng = np.random.default_rng(77)
    failures = []
    for trial in range(20):
        global_rows, cols = int(rng.integers(0, 50)), int(rng.integers(1, 12))
        whole = random_table(rng, global_rows, cols, np.float32)
        count = 0 if global_rows == 0 or trial % 5 == 0 else int(rng.integers(1, 40))
        # Only the upper half is touched: some processes own none of it.
        indices = rng.integers(global_rows // 2, max(global_rows, 1), count).astype(np.int32)
        want = whole.copy()
        sparsenorm.normalize_rows_(want, indices, 0.5)
        if cyclic:
            members = np.arange(RANK, global_rows, SIZE)
            offset = 0
        else:
            b, e = block(global_rows, SIZE - 1 - RANK)  # blocks in reverse rank order
            members, offset = np.arange(b, e), b
        shard = whole[members].copy()
        stats = snd.normalize_rows_(shard, indices, max_norm=0.5, layout="row", row_offset=offset,
                                    cyclic=cyclic, comm=COMM)
        owned = np.isin(indices, members).sum()
        if stats.indices_seen != owned:
            failures.append(f"trial {trial}: indices_seen {stats.indices_seen} vs {owned}")
        if not np.array_equal(shard.view(np.uint32), want[members].view(np.uint32)):
            failures.append(f"trial {trial}: differs from the single-process result")
    agree(failures)


def test_faults_on_one_process_fail_every_process_and_change_nothing():
    rng = np.random.default_rng(99)
    rows, cols = 24, 8
    whole = random_table(rng, rows, cols, np.float32)
    cuts = column_cuts(cols, rng)
    last = RANK == SIZE - 1
    original = whole[:, cuts[RANK]:cuts[RANK + 1]].copy()
    good = np.array([3, 7, 3, 20])
    bad = good.copy()
    if last:
        bad[2] = rows
    failures = []

    def check(name, call, kind, words, table, before):
        got = outcome(call)
        everyone = COMM.allgather(got)
        if got[0] != kind or words not in got[1]:
            failures.append(f"{name}: {got}")
        if any(o != got for o in everyone):
            failures.append(f"{name}: processes disagree: {everyone}")
        if not np.array_equal(table.view(np.uint8), before.view(np.uint8)):
            failures.append(f"{name}: the shard changed")

    t = original.copy()
    check("bad index on the last process",
          lambda: snd.normalize_rows_(t, bad, max_norm=1e-3, comm=COMM),
          "IndexError", f"rank {SIZE - 1} of {SIZE}: indices[2] = 24", t, original)
    t = original.copy()
    check("options differ",
          lambda: snd.normalize_rows_(t, good, max_norm=1e-3 if not last or SIZE == 1 else 2e-3,
                                      eps=-1.0 if SIZE == 1 else 1e-12, comm=COMM),
          "ValueError", "ranks disagree on the options" if SIZE > 1 else "eps", t, original)
    t = original.copy()
    check("a 1-D shard",
          lambda: snd.normalize_rows_(t[0] if last else t, good, comm=COMM),
          "ValueError", f"rank {SIZE - 1} of {SIZE}: shard must be a 2-D table", t, original)
    if cuts[SIZE] > cuts[SIZE - 1]:  # the last process holds a column
        t = original.copy()
        if last:
            t[7, -1] = np.nan
        before = t.copy()
        check("NaN under non_finite='error'",
              lambda: snd.normalize_rows_(t, good, max_norm=1e-3, non_finite="error", comm=COMM),
              "NonFiniteError", "row 7 ", t, before)

    b, e = block(rows, RANK)
    shard = whole[b:e].copy()
    before = shard.copy()
    check("row layout, bad index everywhere",
          lambda: snd.normalize_rows_(shard, [1, 23, -4], layout="row", row_offset=b, comm=COMM),
          "IndexError", "indices[2] = -4", shard, before)
    if SIZE > 1:
        check("row layout, lists differ",
              lambda: snd.normalize_rows_(shard, bad, layout="row", row_offset=b, comm=COMM),
              "ValueError", "ranks disagree on the index list", shard, before)
        check("row layout, a gap between blocks",
              lambda: snd.normalize_rows_(shard, good, layout="row",
                                          row_offset=b + 1 if last else b, comm=COMM),
              "ValueError", "tile", shard, before)
    if last:
        shard[rows - 1 - b, 0] = np.inf
    before = shard.copy()
    check("row layout, infinity under non_finite='error'",
          lambda: snd.normalize_rows_(shard, [0, rows - 1, 5], max_norm=1e-3, layout="row",
                                      row_offset=b, non_finite="error", comm=COMM),
          "NonFiniteError", f"rank {SIZE - 1} of {SIZE}: global row 23", shard, before)
    agree(failures)


@pytest.mark.parametrize("axis", [0, 1])
def test_matrix_blocks_match_the_single_process_call_and_sklearn(axis):
    sklearn = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(123 + axis)
    failures = []
    for trial in range(12):
        rows, cols = int(rng.integers(0, 40)), int(rng.integers(0, 25))
        whole = random_table(rng, rows, cols, np.float64)
        norm = ["l2", "l1", "max"][trial % 3]
        cuts = column_cuts(rows if axis == 0 else cols, rng)
        b, e = cuts[RANK], cuts[RANK + 1]
        mine = (whole[b:e] if axis == 0 else whole[:, b:e]).copy()
        kwargs = dict(axis=axis)
        subset = None
        vectors = cols if axis == 0 else rows
        if trial % 4 == 3 and vectors > 0:
            subset = rng.integers(0, vectors, vectors // 2 + 1)
            kwargs["subset"] = subset
        if trial % 5 == 4:
            kwargs["prune_below"] = 0.02
        _, stats = snd.normalize(mine, norm, comm=COMM, return_stats=True, **kwargs)
        want = whole.copy()
        want_stats = sparsenorm.normalize(want, norm, return_stats=True, **kwargs)[1]
        if (stats.vectors, stats.zero_vectors) != (want_stats.vectors, want_stats.zero_vectors):
            failures.append(f"trial {trial}: stats {stats} vs {want_stats}")
        block = want[b:e] if axis == 0 else want[:, b:e]
        keep = (mine != 0) & (block != 0) if "prune_below" in kwargs else np.ones(mine.shape, bool)
        if not np.allclose(mine[keep], block[keep], rtol=1e-14, atol=0):
            failures.append(f"trial {trial}: differs from sparsenorm.normalize")
        if subset is None and "prune_below" not in kwargs and rows and cols:
            theirs = sklearn.normalize(whole, norm, axis=axis)
            ref = theirs[b:e] if axis == 0 else theirs[:, b:e]
            if not np.allclose(mine, ref, rtol=1e-13, atol=1e-300):
                failures.append(f"trial {trial}: differs from sklearn.preprocessing.normalize")
    agree(failures)


def test_matrix_fault_on_one_process_fails_every_process():
    whole = np.arange(1.0, 25.0).reshape(6, 4)
    cuts = column_cuts(6, np.random.default_rng(4))
    mine = whole[cuts[RANK]:cuts[RANK + 1]].copy()
    before = mine.copy()
    last = RANK == SIZE - 1
    got = outcome(lambda: snd.normalize(mine, "l2", subset=[0, 9] if last else [0, 1],
                                        comm=COMM))
    everyone = COMM.allgather(got)
    failures = []
    # The last process's own check fails first: every process reports it.
    if got[0] != "IndexError" or f"rank {SIZE - 1} of {SIZE}: options.subset[1] = 9" not in got[1]:
        failures.append(f"bad subset on the last process: {got}")
    if any(o != got for o in everyone):
        failures.append(f"processes disagree: {everyone}")
    if not np.array_equal(mine, before):
        failures.append("the block changed")
    agree(failures)


def test_comm_none_needs_an_initialized_torch_group():
    t = np.ones((2, 2), np.float32)
    with pytest.raises(RuntimeError, match="torch.distributed is not initialized"):
        snd.normalize_rows_(t, [0], comm=None)
    with pytest.raises(TypeError, match="comm must be an mpi4py communicator"):
        snd.normalize_rows_(t, [0], comm=object())
    assert np.array_equal(t, np.ones((2, 2), np.float32))


def random_sparse(rng, rows, cols, dtype):
    """About a third of the entries stored, a few of them explicit zeros;
    every fifth column and seventh row empty."""
    dense = random_table(rng, rows, cols, dtype)
    keep = rng.uniform(size=(rows, cols)) < 0.35
    keep[3::7, :] = False
    keep[:, 2::5] = False
    r, c = np.nonzero(keep)
    values = dense[r, c]
    values[rng.uniform(size=values.size) < 0.1] = 0  # explicit zeros
    scipy_sparse = pytest.importorskip("scipy.sparse")
    return scipy_sparse.coo_matrix((values, (r, c)), shape=(rows, cols))


def sparse_block(whole, axis, b, e, index_dtype, array):
    """Rows [b, e) as CSR (axis 0) or columns [b, e) as CSC (axis 1)."""
    scipy_sparse = pytest.importorskip("scipy.sparse")
    if axis == 0:
        m = whole.tocsr()[b:e]
        m = scipy_sparse.csr_array(m) if array else scipy_sparse.csr_matrix(m)
    else:
        m = whole.tocsc()[:, b:e]
        m = scipy_sparse.csc_array(m) if array else scipy_sparse.csc_matrix(m)
    m.indptr = m.indptr.astype(index_dtype)
    m.indices = m.indices.astype(index_dtype)
    return m


def sparse_arrays(m):
    if m.format == "coo":
        return m.data.copy(), m.row.copy(), m.col.copy()
    return m.data.copy(), m.indices.copy(), m.indptr.copy()


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sparse_blocks_match_the_single_process_call_and_sklearn(axis, dtype):
    sklearn = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(321 + axis)  # the same on every process
    failures = []
    for trial in range(12):
        rows, cols = int(rng.integers(0, 40)), int(rng.integers(0, 25))
        whole = random_sparse(rng, rows, cols, dtype)
        norm = ["l2", "l1", "max"][trial % 3]
        index_dtype = np.int64 if trial % 2 else np.int32
        cuts = column_cuts(rows if axis == 0 else cols, rng)
        b, e = cuts[RANK], cuts[RANK + 1]
        kwargs = dict(axis=axis)
        subset = None
        vectors = cols if axis == 0 else rows
        if trial % 4 == 3 and vectors > 0:
            subset = rng.integers(0, vectors, vectors // 2 + 1)
            kwargs["subset"] = subset
        if trial % 5 == 4:
            kwargs["prune_below"] = 0.02
        copy = trial % 3 == 1
        mine = sparse_block(whole, axis, b, e, index_dtype, array=trial % 2 == 0)
        before = sparse_arrays(mine)
        got, stats = snd.normalize(mine, norm, comm=COMM, return_stats=True, copy=copy, **kwargs)
        if "prune_below" in kwargs or copy:
            # A new matrix; the block is left as it was.
            if got is mine or any(not np.array_equal(x, y) for x, y in zip(sparse_arrays(mine), before)):
                failures.append(f"trial {trial}: the block changed or was returned")
        elif got is not mine:
            failures.append(f"trial {trial}: not normalized in place")
        if got.nnz != stats.nnz_after or stats.nnz_before != before[0].size:
            failures.append(f"trial {trial}: nnz {got.nnz} vs stats {stats}")
        want = sparse_block(whole, axis, 0, rows if axis == 0 else cols, index_dtype, False)
        want, want_stats = sparsenorm.normalize(want, norm, return_stats=True, **kwargs)
        want = want.toarray()
        if (stats.vectors, stats.zero_vectors) != (want_stats.vectors, want_stats.zero_vectors):
            failures.append(f"trial {trial}: stats {stats} vs {want_stats}")
        mine_dense = got.toarray()
        ref = want[b:e] if axis == 0 else want[:, b:e]
        keep = ((mine_dense != 0) & (ref != 0) if "prune_below" in kwargs
                else np.ones(mine_dense.shape, bool))
        worst = int(ulps(mine_dense[keep], ref[keep]).max(initial=0))
        if worst > 16:
            failures.append(f"trial {trial}: {worst} ulps from sparsenorm.normalize")
        if "prune_below" in kwargs and np.any(np.abs(got.data) < 0.02):
            failures.append(f"trial {trial}: a value below the threshold was kept")
        if subset is None and "prune_below" not in kwargs and rows and cols:
            theirs = sklearn.normalize(whole.tocsr().astype(np.float64), norm, axis=axis).toarray()
            theirs = theirs[b:e] if axis == 0 else theirs[:, b:e]
            rtol = 1e-6 if dtype == np.float32 else 1e-13
            if not np.allclose(mine_dense, theirs, rtol=rtol, atol=1e-300):
                failures.append(f"trial {trial}: differs from sklearn.preprocessing.normalize")
        # Run to run: the same bits.
        again = snd.normalize(sparse_block(whole, axis, b, e, index_dtype, False), norm,
                              comm=COMM, **kwargs)
        if any(not np.array_equal(x, y) for x, y in zip(sparse_arrays(again), sparse_arrays(got))):
            failures.append(f"trial {trial}: a second run gave other arrays")
    agree(failures)


def test_sparse_fault_on_one_process_fails_every_process_and_changes_nothing():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(55)
    whole = random_sparse(rng, 30, 9, np.float32)
    b, e = block(30, RANK)
    last = RANK == SIZE - 1
    failures = []

    def check(make, call, kind, words):
        mine = make()
        before = sparse_arrays(mine)
        got = outcome(lambda: call(mine))
        everyone = COMM.allgather(got)
        if got[0] != kind or words not in got[1]:
            failures.append(f"{words}: {got}")
        if any(o != got for o in everyone):
            failures.append(f"{words}: processes disagree: {everyone}")
        if any(x.tobytes() != y.tobytes() for x, y in zip(sparse_arrays(mine), before)):
            failures.append(f"{words}: the block changed")

    def block_csr():
        return sparse_block(whole, 0, b, e, np.int64, False)

    def out_of_range():
        m = block_csr()
        if last and m.nnz:
            m.indices[-1] = 9
        return m

    # prune_below would compact indices and indptr were anything written.
    check(out_of_range, lambda m: snd.normalize(m, prune_below=0.2, comm=COMM), "IndexError",
          f"rank {SIZE - 1} of {SIZE}: ")
    check(lambda: block_csr().tocsc() if last else block_csr(),
          lambda m: snd.normalize(m, comm=COMM), "TypeError",
          f"rank {SIZE - 1} of {SIZE}: the slice is a CSC matrix on axis 0")
    check(lambda: block_csr().tocoo() if last else block_csr(),
          lambda m: snd.normalize(m, comm=COMM), "TypeError", "COO")

    def with_nan():
        m = block_csr()
        if last and m.nnz:
            m.data[0] = np.nan
        return m

    check(with_nan, lambda m: snd.normalize(m, non_finite="error", comm=COMM), "NonFiniteError",
          "holds NaN or infinity")
    if SIZE > 1:
        check(block_csr, lambda m: snd.normalize(m, subset=[1, 5] if last else [1, 4], comm=COMM),
              "ValueError", "ranks disagree on the options")
        check(lambda: scipy_sparse.csr_matrix(block_csr().toarray()[:, :8]) if last else block_csr(),
              lambda m: snd.normalize(m, comm=COMM), "ValueError", "ranks disagree")
    agree(failures)


# ---------------------------------------------------------------------------
# The optimizer steps on a column-sharded table (sgd_, adagrad_,
# rowwise_adagrad_, sparse_adam_), against sparsenorm.optim's on the whole
# table.

import sparsenorm.optim as so  # noqa: E402
from sparsenorm import _sharded_step  # noqa: E402

STEP_KINDS = ["sgd_", "adagrad_", "rowwise_adagrad_", "sparse_adam_"]


def step_state(kind, rows, cols, dtype, rng):
    """The state arrays of `kind` for a whole table (row-wise: (rows,))."""
    if kind == "sgd_":
        return []
    if kind == "rowwise_adagrad_":
        return [rng.uniform(0, 0.1, rows).astype(dtype)]
    if kind == "adagrad_":
        return [rng.uniform(0, 0.1, (rows, cols)).astype(dtype)]
    return [rng.uniform(-0.1, 0.1, (rows, cols)).astype(dtype),
            rng.uniform(0, 0.1, (rows, cols)).astype(dtype)]


def state_columns(kind, state, c0, c1):
    if kind == "rowwise_adagrad_":
        return [s.copy() for s in state]  # the replica: whole
    return [np.ascontiguousarray(s[:, c0:c1]) for s in state]


def step_keywords(kind, **extra):
    keywords = {"sgd_": dict(lr=0.1, weight_decay=0.01),
                "adagrad_": dict(lr=0.05, lr_decay=0.01, weight_decay=0.01),
                "rowwise_adagrad_": dict(lr=0.05, weight_decay=0.01, weight_decay_mode="l2"),
                "sparse_adam_": dict(lr=0.01, step=3)}[kind]
    return {**keywords, **extra}


def row_scaled_close(got, want, units):
    """Within `units` of the dtype's precision of each row's largest
    magnitude (the combined sums and norms move a row's factors by ulps)."""
    if want.ndim == 1:
        got, want = got[:, None], want[:, None]
    scale = np.abs(want).max(axis=1, initial=0.0, keepdims=True)
    return bool((np.abs(got - want) <= units * np.finfo(want.dtype).eps * scale).all())


@pytest.mark.parametrize("kind", STEP_KINDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_optimizer_step_matches_the_single_process_step(kind, dtype):
    rng = np.random.default_rng(4242)  # the same on every process
    failures = []
    for trial in range(6):
        rows, cols = int(rng.integers(1, 30)), int(rng.integers(1, 25))
        whole = random_table(rng, rows, cols, dtype)
        state = step_state(kind, rows, cols, dtype, rng)
        count = 0 if trial == 0 else int(rng.integers(1, 50))
        indices = rng.integers(0, rows, count)
        values = rng.standard_normal((count, cols)).astype(dtype)
        constrained = trial % 2 == 1
        keywords = step_keywords(kind, max_norm=0.5 if constrained else None)
        want, want_state = whole.copy(), [s.copy() for s in state]
        want_stats = getattr(so, kind)(want, *want_state, indices, values, **keywords)
        c0, c1 = column_cuts(cols, rng)[RANK:RANK + 2]
        mine = np.ascontiguousarray(whole[:, c0:c1])
        mine_state = state_columns(kind, state, c0, c1)
        again, again_state = mine.copy(), [s.copy() for s in mine_state]
        stats = getattr(snd, kind)(mine, *mine_state, indices,
                                   np.ascontiguousarray(values[:, c0:c1]), comm=COMM, **keywords)
        getattr(snd, kind)(again, *again_state, indices, np.ascontiguousarray(values[:, c0:c1]),
                           comm=COMM, **keywords)
        what = f"{kind} {np.dtype(dtype).name} trial {trial}"
        if any(o != stats for o in COMM.allgather(stats)):
            failures.append(f"{what}: the processes' stats differ")
        if stats != want_stats._replace(rows_scaled=stats.rows_scaled):
            failures.append(f"{what}: stats {stats} vs {want_stats}")
        if not all(np.array_equal(a, b) for a, b in zip([mine, *mine_state],
                                                        [again, *again_state])):
            failures.append(f"{what}: a second run stored other bits")
        if kind == "rowwise_adagrad_" and any(
                not np.array_equal(s, mine_state[0]) for s in COMM.allgather(mine_state[0])):
            failures.append(f"{what}: the replicas of the row sum differ")
        got = [mine, *mine_state]
        expected = [want[:, c0:c1], *state_columns(kind, want_state, c0, c1)]
        exact = SIZE == 1 or (kind != "rowwise_adagrad_" and not constrained)
        for g, w in zip(got, expected):
            if exact and not np.array_equal(g.view(np.uint8), w.view(np.uint8)):
                failures.append(f"{what}: not the single-process bits")
            if not exact and not row_scaled_close(g, w, 64):
                failures.append(f"{what}: beyond the bound")
    agree(failures)


def test_optimizer_step_two_step_exchange_gives_the_one_step_bits(monkeypatch):
    rng = np.random.default_rng(77)
    rows, cols = 40, 2 * SIZE + 5
    whole = random_table(rng, rows, cols, np.float32)
    total = rng.uniform(0, 0.1, rows).astype(np.float32)
    indices = rng.integers(0, rows, 60)
    values = rng.standard_normal((60, cols)).astype(np.float32)
    c0, c1 = column_cuts(cols, rng)[RANK:RANK + 2]
    results = []
    for two_step_from in (2, 10 ** 6):  # two-step at every size, then never
        monkeypatch.setattr(snd, "_TWO_STEP_PROCESSES", two_step_from)
        monkeypatch.setattr(_sharded_step, "_TWO_STEP_PROCESSES", two_step_from)
        mine, mine_total = np.ascontiguousarray(whole[:, c0:c1]), total.copy()
        snd.rowwise_adagrad_(mine, mine_total, indices, np.ascontiguousarray(values[:, c0:c1]),
                             lr=0.1, max_norm=0.3, comm=COMM)
        results.append((mine, mine_total))
    failures = []
    for a, b in zip(results[0], results[1]):
        if not np.array_equal(a.view(np.uint8), b.view(np.uint8)):
            failures.append("the two-step exchange changed the result")
    agree(failures)


def test_optimizer_step_on_16_bit_torch_tensors_with_stochastic_rounding():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    rows, cols = 20, 13
    failures = []
    for dtype in (torch.float16, torch.bfloat16):
        whole = torch.from_numpy(random_table(rng, rows, cols, np.float32)).to(dtype)
        indices = torch.from_numpy(rng.integers(0, rows, 30))
        values = torch.from_numpy(rng.standard_normal((30, cols)).astype(np.float32)).to(dtype)
        c0, c1 = column_cuts(cols, rng)[RANK:RANK + 2]
        for kind, state in (("sgd_", []), ("rowwise_adagrad_", [torch.zeros(rows)])):
            keywords = dict(lr=0.1, stochastic_rounding=True, seed=11, step=4)
            want, want_state = whole.clone(), [s.clone() for s in state]
            getattr(so, kind)(want, *want_state, indices, values, **keywords)
            mine, mine_state = whole[:, c0:c1].contiguous(), [s.clone() for s in state]
            getattr(snd, kind)(mine, *mine_state, indices, values[:, c0:c1].contiguous(),
                               comm=COMM, **keywords)
            exact = SIZE == 1 or kind == "sgd_"  # per element: the global column's bits
            got, expected = mine.float().numpy(), want[:, c0:c1].float().numpy()
            if exact and not np.array_equal(got, expected):
                failures.append(f"{kind} {dtype}: not the single-process bits")
            # Two units of the 16-bit precision, in float32 units.
            units = 2.0 * 2.0 ** (23 - (10 if dtype == torch.float16 else 7))
            if not exact and not row_scaled_close(got, expected, units):
                failures.append(f"{kind} {dtype}: beyond one 16-bit rounding")
    agree(failures)


@pytest.mark.parametrize("kind", ["sgd_", "rowwise_adagrad_", "sparse_adam_"])
def test_optimizer_step_non_finite_gradient_on_the_last_process(kind):
    rng = np.random.default_rng(13)
    rows, cols = 12, 8
    whole = random_table(rng, rows, cols, np.float32)
    state = step_state(kind, rows, cols, np.float32, rng)
    indices = np.array([2, 5, 2, 9])
    values = rng.standard_normal((4, cols)).astype(np.float32)
    values[2, cols - 1] = np.nan  # row 2's second occurrence, the last column: the last process's
    cuts = [cols * k // SIZE for k in range(SIZE + 1)]
    c0, c1 = cuts[RANK], cuts[RANK + 1]
    grad = np.ascontiguousarray(values[:, c0:c1])
    failures = []
    mine, mine_state = np.ascontiguousarray(whole[:, c0:c1]), state_columns(kind, state, c0, c1)
    stats = getattr(snd, kind)(mine, *mine_state, indices, grad, max_norm=1.0, comm=COMM,
                               **step_keywords(kind))
    if stats.nonfinite_rows != 1 or not np.array_equal(mine[2], whole[2, c0:c1]):
        failures.append(f"skip: {stats}; row 2 must be left on every process")
    if kind == "rowwise_adagrad_" and mine_state[0][2] != state[0][2]:
        failures.append("skip: row 2's sum changed")
    mine, mine_state = np.ascontiguousarray(whole[:, c0:c1]), state_columns(kind, state, c0, c1)
    before = [mine.copy(), *[s.copy() for s in mine_state]]
    got = outcome(lambda: getattr(snd, kind)(mine, *mine_state, indices, grad, non_finite="error",
                                             comm=COMM, **step_keywords(kind)))
    if got[0] != "NonFiniteError" or not got[1].startswith(f"rank {SIZE - 1} of {SIZE}: "):
        failures.append(f"error: {got}")
    if any(o != got for o in COMM.allgather(got)):
        failures.append("error: the processes' exceptions differ")
    if not all(np.array_equal(a, b) for a, b in zip([mine, *mine_state], before)):
        failures.append("error: something was written")
    agree(failures)


def test_optimizer_step_faults_on_the_last_process_change_nothing():
    rng = np.random.default_rng(17)
    rows, cols = 16, 10
    last = RANK == SIZE - 1
    whole = random_table(rng, rows, cols, np.float32)
    total = rng.uniform(0, 0.1, rows).astype(np.float32)
    indices = rng.integers(0, rows, 20)
    values = rng.standard_normal((20, cols)).astype(np.float32)
    c0, c1 = column_cuts(cols, rng)[RANK:RANK + 2]
    table = np.ascontiguousarray(whole[:, c0:c1])
    grad = np.ascontiguousarray(values[:, c0:c1])
    failures = []

    def check(name, table_arg, total_arg, idx, kind, words, **keywords):
        t, s = table.copy(), total.copy()
        got = outcome(lambda: snd.rowwise_adagrad_(table_arg(t), total_arg(s), idx, grad,
                                                   comm=COMM, **keywords))
        if got[0] != kind or words not in got[1]:
            failures.append(f"{name}: {got}")
        if any(o != got for o in COMM.allgather(got)):
            failures.append(f"{name}: the processes' exceptions differ")
        if not (np.array_equal(t, table) and np.array_equal(s, total)):
            failures.append(f"{name}: something was written")

    same = lambda a: a  # noqa: E731
    bad = indices.copy()
    if last:
        bad[3] = rows
    check("a bad index", same, same, bad, "IndexError",
          f"rank {SIZE - 1} of {SIZE}: indices[3] = {rows}")
    check("another step", same, same, indices, "ValueError",
          "optimizer options" if SIZE > 1 else "step",
          step=0 if SIZE == 1 else (2 if last else 1))
    check("another seed", same, same, indices, "ValueError",
          "optimizer options" if SIZE > 1 else "lr", seed=7 if last else 0,
          lr=-1.0 if SIZE == 1 else 0.01)
    check("another row count", lambda t: t[:-1] if last else t, lambda s: s[:-1] if last else s,
          indices % (rows - 1), "ValueError", "row count" if SIZE > 1 else "lr",
          **({"lr": -1.0} if SIZE == 1 else {}))
    check("a state of the wrong length", same, lambda s: s[:-1] if last else s, indices,
          "ValueError", f"rank {SIZE - 1} of {SIZE}: ")
    agree(failures)
