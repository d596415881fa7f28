"""sparsenorm.optim: the optimizers against torch.optim (with
torch.embedding_renorm_ after each step for the constraint), against float64
NumPy oracles of the rules where torch has no counterpart (row-wise Adagrad,
lazy weight decay), against the library's scalar reference for every dtype,
index type and thread count, and their promises: state_dict round trips,
schedulers, refused options, refused input leaving everything unchanged,
non-finite rows skipped and counted."""

import doctest
import inspect
import io
import math
import pydoc
import subprocess
import sys

import numpy as np
import pytest
import torch

import sparsenorm
import sparsenorm.optim as so
from module_util import TORCH_DTYPES, snapshot, ulps, unchanged

NUM, DIM = 50, 8


# ---------------------------------------------------------------------------
# Training a small model: nn.Embedding(sparse=True), batches with repeated
# indices, a squared error to fixed targets (so the gradient depends on the
# weights and a difference in one step feeds into the next).

def batches(steps, seed=1, batch=30):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        idx = torch.from_numpy(rng.integers(0, NUM, batch))
        idx[-4:] = idx[0]  # a row named five times at least
        out.append((idx, torch.from_numpy(rng.standard_normal((batch, DIM)))))
    return out


def initial_weights(dtype, seed=0):
    # Rows of norm about 2.8, so that max_norm=1.5 scales most touched rows.
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((NUM, DIM))).to(dtype)


def train(make_optimizer, dtype, data, renorm=None, weights=None, scheduler=None):
    """Trains an embedding on `data`; renorm = (max_norm, norm_type) applies
    torch.embedding_renorm_ to the touched rows after each step."""
    emb = torch.nn.Embedding(NUM, DIM, sparse=True).to(dtype)
    with torch.no_grad():
        emb.weight.copy_(initial_weights(dtype) if weights is None else weights)
    opt = make_optimizer(emb.parameters())
    opt.rows_scaled = 0  # over every step, where the optimizer is ours
    sched = scheduler(opt) if scheduler else None
    for idx, target in data:
        opt.zero_grad()
        ((emb(idx) - target.to(dtype)) ** 2).sum().backward()
        opt.step()
        opt.rows_scaled += sum(s.rows_scaled for s in getattr(opt, "last_stats", []))
        if renorm is not None:
            with torch.no_grad():
                torch.embedding_renorm_(emb.weight, torch.unique(idx), *renorm)
        if sched:
            sched.step()
    return emb.weight.detach().clone(), opt


TORCH_PAIRS = {
    "SGD": (lambda p, **k: so.SGD(p, lr=0.05, **k), lambda p: torch.optim.SGD(p, lr=0.05)),
    "Adagrad": (lambda p, **k: so.Adagrad(p, lr=0.1, lr_decay=0.01, **k),
                lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01)),
    "Adagrad_init": (lambda p, **k: so.Adagrad(p, lr=0.1, initial_accumulator_value=0.5, **k),
                     lambda p: torch.optim.Adagrad(p, lr=0.1, initial_accumulator_value=0.5)),
    "SparseAdam": (lambda p, **k: so.SparseAdam(p, lr=0.05, betas=(0.8, 0.99), **k),
                   lambda p: torch.optim.SparseAdam(p, lr=0.05, betas=(0.8, 0.99))),
}


# After 20 steps our weights and torch's differ by at most 2 units of
# float rounding (epsilon * |w|) on this model (measured: SGD 1.5, Adagrad 2,
# SparseAdam 2 for float32 and float64). They cannot agree bit for bit: the
# repeats of a row are summed in another order (torch's SGD adds each
# occurrence to the weight in turn, its Adagrad and SparseAdam coalesce), and
# the norm is summed in another order. The bound, 8 units, leaves room for
# those and rejects any wrong rule, epsilon or learning rate by orders of
# magnitude (a wrong norm_eps alone moves scaled rows by ~1e-7 relative, 1e9
# float64 units).
def assert_close(ours, theirs, dtype, units=8):
    eps = torch.finfo(dtype).eps
    err = ((ours.double() - theirs.double()).abs() / theirs.double().abs().clamp_min(1.0)).max()
    assert err.item() <= units * eps, f"{err.item() / eps:.1f} units of {dtype} rounding"


@pytest.mark.parametrize("name", sorted(TORCH_PAIRS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("norm_type", [None, 2.0, 1.0])
def test_training_matches_torch(name, dtype, norm_type):
    ours_opt, torch_opt = TORCH_PAIRS[name]
    data = batches(20)
    if norm_type is None:
        ours, _ = train(ours_opt, dtype, data)
        theirs, _ = train(torch_opt, dtype, data)
    else:
        max_norm = 1.5 if norm_type == 2.0 else 4.0
        ours, opt = train(lambda p: ours_opt(p, max_norm=max_norm, norm_type=norm_type), dtype,
                          data)
        theirs, _ = train(torch_opt, dtype, data, renorm=(max_norm, norm_type))
        # The constraint did work: touched rows were scaled, and within it.
        touched = torch.unique(torch.cat([i for i, _ in data]))
        norms = torch.linalg.vector_norm(ours[touched].double(), ord=norm_type, dim=1)
        assert norms.max().item() <= max_norm * (1 + 1e-6)
        assert opt.rows_scaled > 20
        unconstrained, _ = train(ours_opt, dtype, data)
        assert not torch.allclose(unconstrained, ours)
    assert_close(ours, theirs, dtype)
    # Rows no batch named are untouched.
    untouched = sorted(set(range(NUM)) - set(torch.cat([i for i, _ in data]).tolist()))
    assert torch.equal(ours[untouched], initial_weights(dtype)[untouched])


@pytest.mark.parametrize("name", ["SGD", "Adagrad"])
def test_dense_gradients_match_torch(name):
    # nn.Embedding(sparse=False): every row updated, as torch updates them.
    ours_opt, torch_opt = TORCH_PAIRS[name]
    results = []
    for make in (ours_opt, torch_opt):
        emb = torch.nn.Embedding(NUM, DIM).double()
        with torch.no_grad():
            emb.weight.copy_(initial_weights(torch.float64))
        opt = make(emb.parameters())
        for idx, target in batches(10):
            opt.zero_grad()
            ((emb(idx) - target) ** 2).sum().backward()
            opt.step()
        results.append(emb.weight.detach())
    assert_close(results[0], results[1], torch.float64, units=4)


# ---------------------------------------------------------------------------
# A float64 NumPy oracle of the rules of include/sparsenorm/optim.h, written
# from torch's and FBGEMM's formulas; the gradient of the squared error is
# computed here too, from the oracle's own weights.

def oracle_train(kind, data, h, weights=None):
    w = (initial_weights(torch.float64) if weights is None else weights).numpy().copy()
    s1 = np.zeros(NUM) if kind == "rowwise" else np.zeros_like(w)
    s1 += h.get("initial_accumulator_value", 0.0)
    s2 = np.zeros_like(w)
    lr, wd, mode = h["lr"], h.get("weight_decay", 0.0), h.get("weight_decay_mode", "l2")
    for t, (idx, target) in enumerate(data, start=1):
        idx, target = idx.numpy(), target.numpy()
        grads = 2 * (w[idx] - target)
        for r in np.unique(idx):
            g = grads[idx == r].sum(axis=0)
            x = w[r]
            gd = g + wd * x if mode == "l2" else g
            if kind == "sgd":
                new = (1 - lr * wd) * x - lr * g if mode == "decoupled" else x - lr * gd
            elif kind == "adagrad":
                clr = lr / (1 + (t - 1) * h.get("lr_decay", 0.0))
                s1[r] += gd ** 2
                step = clr * gd / (np.sqrt(s1[r]) + h["eps"])
                new = (1 - clr * wd) * x - step if mode == "decoupled" else x - step
            elif kind == "rowwise":  # FBGEMM's exact row-wise Adagrad
                s1[r] += np.mean(gd ** 2)
                m = lr / (np.sqrt(s1[r]) + h["eps"])
                c = {"none": 1.0, "l2": 1 - m * wd, "decoupled": 1 - lr * wd}[mode]
                new = c * x - m * g
            else:  # lazy Adam; decoupled as AdamW
                b1, b2 = h["betas"]
                s1[r] += (gd - s1[r]) * (1 - b1)
                s2[r] += (gd ** 2 - s2[r]) * (1 - b2)
                size = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                base = (1 - lr * wd) * x if mode == "decoupled" else x
                new = base - size * s1[r] / (np.sqrt(s2[r]) + h["eps"])
            if "max_norm" in h:
                n = np.linalg.norm(new)
                if n > h["max_norm"]:
                    new = new * (h["max_norm"] / (n + 1e-7))
            w[r] = new
    return torch.from_numpy(w), s1


ORACLE_CLASSES = {"sgd": so.SGD, "adagrad": so.Adagrad, "rowwise": so.RowWiseAdagrad,
                  "adam": so.SparseAdam}


def ours_train(kind, data, h):
    return train(lambda p: ORACLE_CLASSES[kind](p, **h), torch.float64, data)


@pytest.mark.parametrize("mode,weight_decay", [("none", 0.0), ("l2", 0.1), ("decoupled", 0.1)])
@pytest.mark.parametrize("max_norm", [None, 1.5])
def test_rowwise_adagrad_matches_fbgemm_formula(mode, weight_decay, max_norm):
    h = dict(lr=0.2, eps=1e-8, weight_decay=weight_decay, weight_decay_mode=mode)
    if max_norm:
        h["max_norm"] = max_norm
    data = batches(20)
    ours, opt = ours_train("rowwise", data, h)
    exact, sums = oracle_train("rowwise", data, h)
    assert_close(ours, exact, torch.float64)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert state["sum"].shape == (NUM,) and state["sum"].dtype == torch.float64
    np.testing.assert_allclose(state["sum"].numpy(), sums, rtol=1e-13)
    assert state["step"] == 20


# torch 1.13 refuses weight decay with sparse gradients in Adagrad and
# densifies the gradient in SGD (decaying every row); ours decays the named
# rows only.
@pytest.mark.parametrize("kind", ["sgd", "adagrad", "adam"])
@pytest.mark.parametrize("mode", ["l2", "decoupled"])
def test_lazy_weight_decay_matches_oracle(kind, mode):
    h = dict(lr=0.05, weight_decay=0.2, weight_decay_mode=mode)
    if kind == "adagrad":
        h.update(eps=1e-10, lr_decay=0.01)
    if kind == "adam":
        h.update(eps=1e-8, betas=(0.9, 0.999))
    data = batches(20, batch=10)
    ours, _ = ours_train(kind, data, h)
    exact, _ = oracle_train(kind, data, h)
    assert_close(ours, exact, torch.float64)
    untouched = sorted(set(range(NUM)) - set(torch.cat([i for i, _ in data]).tolist()))
    assert untouched, "the test needs rows no batch names"
    assert torch.equal(ours[untouched], initial_weights(torch.float64)[untouched])


# ---------------------------------------------------------------------------
# The functions against the scalar reference, on every dtype, index type and
# thread count. Exact where tests/optim/optim_test.cc is: the table bit for
# bit for every rule but row-wise Adagrad's (whose sum of squares is added in
# a backend's own order), without a constraint; with one, within the norm's
# rounding (8 float32 / 16 float64 ulps, 1 for 16-bit tables); the state bit
# for bit but row-wise Adagrad's. Thread counts: bit for bit, always.

FUNCTIONS = {
    "sgd": (so.sgd_, 0, dict(lr=0.1)),
    "adagrad": (so.adagrad_, 1, dict(lr=0.05, lr_decay=0.01)),
    "rowwise": (so.rowwise_adagrad_, 1, dict(lr=0.05)),
    "adam": (so.sparse_adam_, 2, dict(lr=0.01, betas=(0.9, 0.99))),
}


def make_case(kind, dtype, rows=400, cols=24, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    table = torch.from_numpy(rng.standard_normal((rows, cols))).to(dtype)
    state_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    shape = (rows,) if kind == "rowwise" else (rows, cols)
    states = [torch.from_numpy(rng.uniform(0, 1, shape)).to(state_dtype)
              for _ in range(FUNCTIONS[kind][1])]
    if kind == "adam":
        states[0] -= 0.5  # first moments of either sign
    idx = rng.integers(0, rows, n)
    idx[:150] = 7  # a row named past the repeat group (64)
    rng.shuffle(idx)
    values = torch.from_numpy(rng.standard_normal((n, cols))).to(dtype)
    return table, states, torch.from_numpy(idx), values


def run_function(kind, case, index_dtype, **kwargs):
    function, _, h = FUNCTIONS[kind]
    table, states, idx, values = (x.clone() if isinstance(x, torch.Tensor) else
                                  [s.clone() for s in x] for x in case)
    stats = function(table, *states, idx.to(index_dtype), values, **h, step=3, **kwargs)
    return table, states, stats


def bits(x):
    return snapshot(x)[0]


@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
@pytest.mark.parametrize("dtype", TORCH_DTYPES)
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("constraint", [{}, {"max_norm": 3.0}, {"constant_norm": 2.0,
                                                                   "norm_type": math.inf}])
def test_functions_match_reference(kind, dtype, index_dtype, constraint):
    case = make_case(kind, dtype)
    one = run_function(kind, case, index_dtype, num_threads=1, **constraint)
    two = run_function(kind, case, index_dtype, num_threads=2, **constraint)
    ref = run_function(kind, case, index_dtype, backend="reference", **constraint)
    for a, b in zip([one[0], *one[1]], [two[0], *two[1]]):
        assert np.array_equal(bits(a), bits(b)), "the thread count changed the result"
    assert one[2] == two[2] == ref[2] or kind == "rowwise"
    assert one[2].indices_seen == 3000 and one[2].distinct_rows == ref[2].distinct_rows
    rowwise = kind == "rowwise"
    if not rowwise and not constraint:
        assert np.array_equal(bits(one[0]), bits(ref[0]))
    elif not rowwise:
        tolerance = {torch.float32: 8, torch.float64: 16}.get(dtype, 1)
        assert ulps(one[0], ref[0], dtype) <= tolerance
    else:
        # The float32 (float64) rounding of the row's sum of squares, relative
        # to the row's largest element, plus a 16-bit ulp there.
        rel = 1e-13 if dtype == torch.float64 else 2e-6
        narrow = {torch.float16: 2.0 ** -10, torch.bfloat16: 2.0 ** -7}.get(dtype, 0.0)
        a, b = one[0].double(), ref[0].double()
        row_max = b.abs().amax(dim=1, keepdim=True)
        assert ((a - b).abs() <= row_max * (rel + narrow)).all()
    for s, r in zip(one[1], ref[1]):
        if rowwise:
            np.testing.assert_allclose(s.numpy(), r.numpy(), rtol=1e-13 if dtype ==
                                       torch.float64 else 2e-6)
        else:
            assert np.array_equal(bits(s), bits(r))
    # The step did something: every named row moved.
    named = torch.unique(case[2])
    assert not torch.equal(one[0][named], case[0][named])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
def test_stochastic_rounding_matches_reference(dtype, kind):
    case = make_case(kind, dtype, n=2000)
    kw = dict(stochastic_rounding=True, seed=99)
    one = run_function(kind, case, torch.int64, num_threads=1, **kw)
    two = run_function(kind, case, torch.int64, num_threads=2, **kw)
    assert np.array_equal(bits(one[0]), bits(two[0]))
    if kind != "rowwise":
        ref = run_function(kind, case, torch.int64, backend="reference", **kw)
        assert np.array_equal(bits(one[0]), bits(ref[0]))
    nearest = run_function(kind, case, torch.int64)
    other_seed = run_function(kind, case, torch.int64, stochastic_rounding=True, seed=100)
    assert not np.array_equal(bits(one[0]), bits(nearest[0]))
    assert not np.array_equal(bits(one[0]), bits(other_seed[0]))
    # Stochastic rounding lands on one of the two neighbours of the exact
    # value, nearest on the nearer: never more than a 16-bit ulp apart.
    assert ulps(one[0], nearest[0], dtype) <= 1


def test_numpy_arrays_and_dense_gradients():
    rng = np.random.default_rng(5)
    table = rng.standard_normal((6, 3))
    total = np.zeros(6)
    grad = rng.standard_normal((6, 3))
    dense, sparse = table.copy(), table.copy()
    s1 = so.rowwise_adagrad_(dense, total.copy(), None, grad, lr=0.1)
    s2 = so.rowwise_adagrad_(sparse, total.copy(), np.arange(6), grad, lr=0.1)
    assert np.array_equal(dense, sparse) and s1 == s2 == sparsenorm.RowStats(6, 6, 0, 0)
    # The (rows,) accumulators are updated in place, through a (rows, 1) view.
    so.rowwise_adagrad_(table, total, [1, 1, 4], grad[:3], lr=0.1)
    assert np.count_nonzero(total) == 2 and total[1] > 0 and total[4] > 0


def test_caffe2_sign_adagrad():
    # Caffe2's SparseAdagrad: w += lr * g / (sqrt(sum) + eps), descent with lr < 0.
    table, total = np.array([[1.0, 2.0]]), np.zeros((1, 2))
    so.adagrad_(table, total, [0], np.array([[3.0, -4.0]]), lr=-0.5, eps=0.0, caffe2_sign=True)
    np.testing.assert_array_equal(table, [[0.5, 2.5]])
    np.testing.assert_array_equal(total, [[9.0, 16.0]])


# ---------------------------------------------------------------------------
# The optimizer's own promises.

def sparse_grad(rows, cols, idx, values):
    return torch.sparse_coo_tensor(torch.as_tensor(idx).reshape(1, -1), values, (rows, cols))


def state_snapshot(opt):
    out = []
    for p, state in opt.state.items():
        out.append((snapshot(p), {k: snapshot(v) if isinstance(v, torch.Tensor) else v
                                  for k, v in state.items()}))
    return out


def same_state(opt, before):
    now = state_snapshot(opt)
    if len(now) != len(before):
        return False
    for (p1, s1), (p2, s2) in zip(now, before):
        if s1.keys() != s2.keys() or not (np.array_equal(p1[0], p2[0])):
            return False
        for k in s1:
            a, b = s1[k], s2[k]
            if isinstance(a, tuple) != isinstance(b, tuple):
                return False
            if isinstance(a, tuple) and not np.array_equal(a[0], b[0]):
                return False
            if not isinstance(a, tuple) and a != b:
                return False
    return True


ALL_CLASSES = [
    lambda p: so.SGD(p, lr=0.1, max_norm=1.0),
    lambda p: so.Adagrad(p, lr=0.1, initial_accumulator_value=0.1, max_norm=1.0),
    lambda p: so.RowWiseAdagrad(p, lr=0.1, max_norm=1.0),
    lambda p: so.SparseAdam(p, lr=0.1, max_norm=1.0),
]
CLASS_IDS = ["SGD", "Adagrad", "RowWiseAdagrad", "SparseAdam"]


def hand_steps(param, opt, steps, rng):
    """`steps` steps of random sparse gradients with repeats, drawn from `rng`."""
    rows, cols = param.shape
    for _ in range(steps):
        idx = rng.integers(0, rows, 12)
        idx[-3:] = idx[0]
        param.grad = sparse_grad(rows, cols, idx,
                                 torch.from_numpy(rng.standard_normal((12, cols))).to(param.dtype))
        opt.step()


@pytest.mark.parametrize("make", ALL_CLASSES, ids=CLASS_IDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_state_dict_round_trip(make, dtype):
    w0 = initial_weights(dtype)
    straight = torch.nn.Parameter(w0.clone())
    opt = make([straight])
    hand_steps(straight, opt, 10, np.random.default_rng(3))

    rng = np.random.default_rng(3)  # the same gradients, in two runs
    first = torch.nn.Parameter(w0.clone())
    opt1 = make([first])
    hand_steps(first, opt1, 4, rng)
    buffer = io.BytesIO()
    torch.save(opt1.state_dict(), buffer)
    buffer.seek(0)
    resumed = torch.nn.Parameter(first.detach().clone())
    opt2 = make([resumed])
    opt2.load_state_dict(torch.load(buffer))
    state = opt2.state[resumed]
    want = torch.float64 if dtype == torch.float64 else torch.float32
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            assert v.dtype == want, f"{k} came back as {v.dtype}"
    assert state["step"] == 4 and isinstance(state["step"], int)
    hand_steps(resumed, opt2, 6, rng)
    assert np.array_equal(bits(resumed.detach()), bits(straight.detach()))
    for k, v in opt.state[straight].items():
        if isinstance(v, torch.Tensor):
            assert np.array_equal(bits(v), bits(opt2.state[resumed][k])), k
    assert opt2.state[resumed]["step"] == opt.state[straight]["step"] == 10


def test_torch_casts_16bit_state_without_the_override():
    # The case load_state_dict guards against: torch's own loading casts the
    # float32 state of a float16 parameter to float16.
    p = torch.nn.Parameter(initial_weights(torch.float16))
    opt = so.Adagrad([p], lr=0.1)
    hand_steps(p, opt, 2, np.random.default_rng(1))
    saved = opt.state_dict()
    other = so.Adagrad([torch.nn.Parameter(p.detach().clone())], lr=0.1)
    torch.optim.Optimizer.load_state_dict(other, saved)
    assert next(iter(other.state.values()))["sum"].dtype == torch.float16
    other.load_state_dict(saved)
    assert next(iter(other.state.values()))["sum"].dtype == torch.float32


def test_load_torch_adagrad_state_dict():
    # torch.optim.Adagrad's state (step as a tensor) loads into ours.
    w0 = initial_weights(torch.float32)
    data = batches(6)
    theirs, topt = train(lambda p: torch.optim.Adagrad(p, lr=0.1), torch.float32, data[:3])
    emb = torch.nn.Embedding(NUM, DIM, sparse=True)
    with torch.no_grad():
        emb.weight.copy_(theirs)
    ours = so.Adagrad(emb.parameters(), lr=0.1)
    ours.load_state_dict(topt.state_dict())
    assert ours.state[emb.weight]["step"] == 3
    assert ours.param_groups[0]["max_norm"] is None  # our options, filled in
    for idx, target in data[3:]:
        ours.zero_grad()
        ((emb(idx) - target.float()) ** 2).sum().backward()
        ours.step()
    full, _ = train(lambda p: torch.optim.Adagrad(p, lr=0.1), torch.float32, data, weights=w0)
    assert_close(emb.weight.detach(), full, torch.float32)


def test_load_state_dict_refuses_wrong_shapes():
    p = torch.nn.Parameter(initial_weights(torch.float32))
    opt = so.SparseAdam([p])
    hand_steps(p, opt, 1, np.random.default_rng(0))
    saved = opt.state_dict()
    saved["state"][0]["exp_avg"] = torch.zeros(NUM, DIM + 1)
    before = state_snapshot(opt)
    with pytest.raises(ValueError, match=r"'exp_avg' for parameter 0 of group 0 .* has shape "
                                         r"\(50, 9\); \(50, 8\) was expected"):
        opt.load_state_dict(saved)
    assert same_state(opt, before)


def test_scheduler_changes_the_learning_rate():
    data = batches(8)
    gamma, lr = 0.1, 0.05
    scheduled, _ = train(lambda p: so.SGD(p, lr=lr), torch.float64, data,
                         scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma))
    constant, _ = train(lambda p: so.SGD(p, lr=lr), torch.float64, data)
    assert not torch.allclose(scheduled, constant)
    # The same schedule through the function, step by step.
    w = initial_weights(torch.float64).clone()
    for t, (idx, target) in enumerate(data):
        grad = 2 * (w[idx] - target)
        so.sgd_(w, idx, grad, lr=lr * gamma ** (t // 3))
    assert torch.equal(scheduled, w)


def test_closure_is_called_with_grad_enabled():
    emb = torch.nn.Embedding(NUM, DIM, sparse=True)
    opt = so.SparseAdam(emb.parameters())
    idx = torch.tensor([1, 2, 1])

    def closure():
        assert torch.is_grad_enabled()
        opt.zero_grad()
        loss = emb(idx).pow(2).sum()
        loss.backward()
        return loss

    with torch.no_grad():
        loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor) and opt.state[emb.weight]["step"] == 1
    assert opt.last_stats == [sparsenorm.RowStats(3, 2, 0, 0)]


def test_param_groups_take_their_own_options():
    a = torch.nn.Parameter(initial_weights(torch.float32) * 10)
    b = torch.nn.Parameter(initial_weights(torch.float32) * 10)
    opt = so.SGD([{"params": [a]}, {"params": [b], "max_norm": 1.0}], lr=0.0)
    for p in (a, b):
        p.grad = sparse_grad(NUM, DIM, [0, 1], torch.zeros(2, DIM))
    opt.step()
    assert torch.equal(a[:2], initial_weights(torch.float32)[:2] * 10)
    assert torch.allclose(b[:2].norm(dim=1), torch.ones(2))


# Parameter groups: each group's options apply to its parameters, whatever
# the others'. The reference is one optimizer per group on the same
# gradients, which must give the same bits (the loop over tables runs each
# table's step alone).
GROUP_CASES = {
    # examples/maxnorm_recommender.py's form: factors constrained, biases not.
    "Adagrad": (so.Adagrad, dict(lr=0.05),
                [{"max_norm": 1.5}, {}, {"weight_decay": 0.01, "lr": 0.2}]),
    "SGD": (so.SGD, dict(lr=0.1, max_norm=2.0),
            [{"norm_type": 1.0, "norm_eps": 0.0}, {"max_norm": None, "constant_norm": 1.0},
             {"weight_decay": 0.1, "weight_decay_mode": "decoupled"}]),
    "RowWiseAdagrad": (so.RowWiseAdagrad, dict(lr=0.1),
                       [{"eps": 1e-3}, {"max_norm": 1.0, "norm_type": math.inf},
                        {"weight_decay": 0.1, "weight_decay_mode": "l2"}]),
    "SparseAdam": (so.SparseAdam, dict(lr=0.05, max_norm=1.0),
                   [{"betas": (0.5, 0.9)}, {"max_norm": None}, {"lr": 0.01, "eps": 1e-3}]),
}


@pytest.mark.parametrize("name", sorted(GROUP_CASES))
def test_param_groups_match_one_optimizer_per_group(name):
    cls, defaults, groups = GROUP_CASES[name]
    rng = np.random.default_rng(11)
    shapes = [(NUM, DIM), (30, 1), (NUM, 3)]  # tables, a bias column, another table
    w0 = [torch.from_numpy(rng.standard_normal(shape) * 2) for shape in shapes]
    grads = [[(rng.integers(0, w.shape[0], 15), rng.standard_normal((15, w.shape[1])))
              for _ in range(5)] for w in w0]
    # Several tables in each group: two copies of each table.
    together = [[torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())] for w in w0]
    apart = [[torch.nn.Parameter(w.clone()), torch.nn.Parameter(w.clone())] for w in w0]
    opt = cls([{"params": ps, **g} for ps, g in zip(together, groups)], **defaults)
    opts = [cls(ps, **{**defaults, **g}) for ps, g in zip(apart, groups)]
    for g in opt.param_groups:  # every option is in every group
        assert g.keys() == opt.param_groups[0].keys()
    for t in range(5):
        for params in (together, apart):
            for ps, w, gr in zip(params, w0, grads):
                for p in ps:
                    p.grad = sparse_grad(*w.shape, gr[t][0], torch.from_numpy(gr[t][1]))
        opt.step()
        for o in opts:
            o.step()
    assert len(opt.last_stats) == 6
    results = []
    for ps_t, ps_a, w in zip(together, apart, w0):
        for a, b in zip(ps_t, ps_a):
            assert torch.equal(a, b)
            assert opt.state[a]["step"] == 5
        results.append(ps_t[0].detach())
    # The groups did differ: no two groups' options give the same result.
    alone = [cls([torch.nn.Parameter(w.clone())], **defaults) for w in w0]
    differs = 0
    for o, w, gr, r in zip(alone, w0, grads, results):
        p = o.param_groups[0]["params"][0]
        for idx, values in gr:
            p.grad = sparse_grad(*w.shape, idx, torch.from_numpy(values))
            o.step()
        differs += not torch.equal(p.detach(), r)
    assert differs == sum(1 for g in groups if g)


def test_param_group_constraint_applies_to_its_group_only():
    # The recommender's pattern, against torch: a constrained group and an
    # unconstrained one, each with the rule of torch.optim.Adagrad.
    data = batches(10)
    w0 = initial_weights(torch.float64)
    results = []
    for ours in (True, False):
        factors = torch.nn.Embedding(NUM, DIM, sparse=True).double()
        biases = torch.nn.Embedding(NUM, DIM, sparse=True).double()
        with torch.no_grad():
            factors.weight.copy_(w0)
            biases.weight.copy_(w0)
        params = [{"params": factors.parameters(), "max_norm": 1.5},
                  {"params": biases.parameters()}]
        if ours:
            opt = so.Adagrad(params, lr=0.05)
        else:
            opt = torch.optim.Adagrad([{"params": g["params"]} for g in params], lr=0.05)
        for idx, target in data:
            opt.zero_grad()
            ((factors(idx) + biases(idx) - target) ** 2).sum().backward()
            opt.step()
            if not ours:
                with torch.no_grad():
                    torch.embedding_renorm_(factors.weight, torch.unique(idx), 1.5, 2.0)
        results.append((factors.weight.detach(), biases.weight.detach()))
    assert_close(results[0][0], results[1][0], torch.float64)
    assert_close(results[0][1], results[1][1], torch.float64)
    assert results[0][1].norm(dim=1).max() > 1.5  # the biases' group is not constrained


def test_empty_gradient_after_zero_grad():
    # zero_grad() without set_to_none leaves an empty sparse gradient (whose
    # index tensor has no memory at all): nothing moves, the step counts.
    emb = torch.nn.Embedding(NUM, DIM, sparse=True)
    opt = so.Adagrad(emb.parameters())
    emb(torch.tensor([1])).sum().backward()
    opt.zero_grad(set_to_none=False)
    before = snapshot(emb.weight.detach())
    opt.step()
    assert unchanged(emb.weight.detach(), before)
    assert opt.last_stats == [sparsenorm.RowStats(0, 0, 0, 0)]
    assert opt.state[emb.weight]["step"] == 1
    # The function on an empty index tensor, with an empty but allocated
    # gradient: no row is read or written.
    table = torch.ones(4, 3)
    stats = so.sgd_(table, torch.empty(0, dtype=torch.int64), np.zeros((0, 3), np.float32), lr=1)
    assert stats == sparsenorm.RowStats(0, 0, 0, 0) and torch.equal(table, torch.ones(4, 3))


# ---------------------------------------------------------------------------
# Refusals.

@pytest.mark.parametrize("cls,kwargs,match", [
    (so.SGD, dict(lr=0.1, momentum=0.9), r"momentum=0.9 is not implemented"),
    (so.SGD, dict(lr=0.1, dampening=0.1), r"dampening=0.1 is not implemented"),
    (so.SGD, dict(lr=0.1, nesterov=True), r"nesterov=True is not implemented"),
    (so.SGD, dict(lr=0.1, maximize=True), r"maximize=True is not implemented"),
    (so.SGD, dict(lr=0.1, foreach=True), r"foreach=True is not implemented"),
    (so.SGD, dict(lr=0.1, differentiable=True), r"differentiable=True is not implemented"),
    (so.SGD, dict(lr=0.1, fused=True), r"fused=True is not implemented"),
    (so.Adagrad, dict(foreach=True), r"foreach=True is not implemented"),
    (so.Adagrad, dict(maximize=True), r"maximize=True is not implemented"),
    (so.Adagrad, dict(differentiable=True), r"differentiable=True"),
    (so.SparseAdam, dict(maximize=True), r"maximize=True is not implemented"),
    (so.SGD, dict(), r"gives no lr"),
    (so.SGD, dict(lr=-1.0), r"options.lr = -1 is invalid"),
    (so.SGD, dict(lr=0.1, weight_decay=0.1, weight_decay_mode="none"),
     r"options.weight_decay = 0.1 would have no effect"),
    (so.RowWiseAdagrad, dict(weight_decay=0.1), r"would have no effect with weight_decay_mode"),
    (so.SGD, dict(lr=0.1, weight_decay_mode="adamw"), r"weight_decay_mode='adamw' is not one"),
    (so.SGD, dict(lr=0.1, max_norm=1.0, constant_norm=1.0), r"both given"),
    (so.SGD, dict(lr=0.1, max_norm=-1.0), r"options.constraint.target = -1 is invalid"),
    (so.SGD, dict(lr=0.1, max_norm=1.0, norm_type=0.0), r"options.constraint.p = 0 is invalid"),
    (so.SGD, dict(lr=0.1, stochastic_rounding=True), r"stochastic but the table is float32"),
    (so.SparseAdam, dict(betas=(0.9, 1.0)), r"options.beta2 = 1 is invalid"),
    (so.Adagrad, dict(eps=-1.0), r"options.eps = -1 is invalid"),
    (so.Adagrad, dict(initial_accumulator_value=-1.0), r"initial_accumulator_value = -1.0"),
    (so.SGD, dict(lr=0.1, seed=2 ** 64), r"seed = 18446744073709551616 is out of range"),
    (so.SGD, dict(lr=0.1, num_threads=-1), r"num_threads = -1 is invalid"),
    (so.SGD, dict(lr=0.1, synchronize=None), r"synchronize must be True or False"),
    (so.SGD, dict(lr=0.1, synchronize=False), r"synchronize=False .* is not implemented"),
])
def test_refused_options(cls, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        cls([torch.nn.Parameter(torch.zeros(3, 2))], **kwargs)


def test_unknown_torch_keyword_is_an_error():
    with pytest.raises(TypeError, match="amsgrad"):
        so.SparseAdam([torch.nn.Parameter(torch.zeros(3, 2))], amsgrad=True)


def test_options_set_later_are_checked_at_the_step():
    p = torch.nn.Parameter(initial_weights(torch.float32))
    opt = so.SGD([p], lr=0.1)
    p.grad = sparse_grad(NUM, DIM, [1], torch.ones(1, DIM))
    before = snapshot(p.detach())
    opt.param_groups[0]["momentum"] = 0.9
    with pytest.raises(ValueError, match="momentum=0.9 is not implemented"):
        opt.step()
    opt.param_groups[0]["momentum"] = 0
    opt.param_groups[0]["lr"] = math.nan
    with pytest.raises(ValueError, match="options.lr = nan is invalid"):
        opt.step()
    assert unchanged(p.detach(), before) and len(opt.state) == 0


@pytest.mark.parametrize("bad,exception,match", [
    (torch.zeros(5), ValueError, r"is not 2-D"),
    (torch.zeros(5, 2, dtype=torch.int64), TypeError, r"the dtype must be one of"),
    (torch.zeros(5, 2, device="meta"), TypeError, r"is neither in CPU memory nor on a CUDA device"),
])
def test_refused_parameters(bad, exception, match):
    with pytest.raises(exception, match=match):
        so.SparseAdam([bad])


@pytest.mark.parametrize("make", ALL_CLASSES, ids=CLASS_IDS)
def test_index_out_of_range_changes_nothing(make):
    good = torch.nn.Parameter(initial_weights(torch.float32))
    bad = torch.nn.Parameter(initial_weights(torch.float32))
    opt = make([good, bad])
    hand_steps(good, opt, 2, np.random.default_rng(4))  # some state to keep
    good.grad = sparse_grad(NUM, DIM, [1, 2], torch.ones(2, DIM))
    # A hand-built gradient torch's checked constructor would refuse.
    bad.grad = torch._sparse_coo_tensor_unsafe(torch.tensor([[3, NUM, 4]]), torch.ones(3, DIM),
                                               (NUM, DIM))
    before = state_snapshot(opt), snapshot(good.detach()), snapshot(bad.detach())
    with pytest.raises(IndexError, match=rf"indices\[1\] = {NUM} is out of range for {NUM} "
                                         "table rows"):
        opt.step()
    assert same_state(opt, before[0])
    assert unchanged(good.detach(), before[1]) and unchanged(bad.detach(), before[2])
    # Alone, the bad parameter is refused by the step itself, as atomically.
    good.grad = None
    with pytest.raises(IndexError, match=r"indices\[1\]"):
        opt.step()
    assert same_state(opt, before[0]) and unchanged(bad.detach(), before[2])


@pytest.mark.parametrize("make", ALL_CLASSES, ids=CLASS_IDS)
def test_refused_layout_of_a_later_parameter_changes_nothing(make):
    # The second parameter's rows are not contiguous (a transposed view):
    # the library refuses it, and the first, which comes before it, must
    # not have been written either.
    good = torch.nn.Parameter(initial_weights(torch.float32))
    bad = torch.nn.Parameter(initial_weights(torch.float32).t().contiguous().t())
    opt = make([good, bad])
    for p in (good, bad):
        p.grad = sparse_grad(NUM, DIM, [1, 2, 1], torch.ones(3, DIM))
    before = state_snapshot(opt), snapshot(good.detach()), snapshot(bad.detach())
    with pytest.raises(TypeError, match=r"^parameter 1 of group 0 \(shape \(50, 8\), float32, "
                                        r"cpu\): table of shape \(50, 8\) has element strides "
                                        r"\(1, 50\)"):
        opt.step()
    assert same_state(opt, before[0]) and opt.last_stats == []
    assert unchanged(good.detach(), before[1]) and unchanged(bad.detach(), before[2])


def test_gradient_of_two_sparse_dimensions_is_refused():
    p = torch.nn.Parameter(initial_weights(torch.float32))
    opt = so.SGD([p], lr=0.1)
    p.grad = torch.sparse_coo_tensor(torch.tensor([[1, 2], [0, 3]]), torch.ones(2), (NUM, DIM))
    before = snapshot(p.detach())
    with pytest.raises(ValueError, match="2 sparse and 0 dense dimensions"):
        opt.step()
    assert unchanged(p.detach(), before)


def refused_call(function, arrays, exception, match, **kwargs):
    before = [snapshot(a) for a in arrays[:-2] if a is not None]
    with pytest.raises(exception, match=match):
        function(*arrays, **kwargs)
    assert all(unchanged(a, b) for a, b in zip([a for a in arrays[:-2] if a is not None],
                                               before))


def test_functions_refuse_bad_shapes_and_indices():
    rng = np.random.default_rng(2)
    table = rng.standard_normal((10, 4)).astype(np.float32)
    total = np.ones((10, 4), np.float32)
    grad = rng.standard_normal((3, 4)).astype(np.float32)
    refused_call(so.adagrad_, (table, total, [1, 10, 2], grad), IndexError,
                 r"indices\[1\] = 10 is out of range for 10 table rows")
    refused_call(so.adagrad_, (table, total, [1, 2], grad), ValueError,
                 r"values has 3 rows but there are 2 indices")
    refused_call(so.adagrad_, (table, total, [1, 2, 3], grad[:, :3].copy()), ValueError,
                 r"values has 3 columns but the table has 4")
    refused_call(so.adagrad_, (table, total[:9], [1, 2, 3], grad), ValueError,
                 r"state.sum is 9 x 4 float32 but Adagrad on a 10 x 4 float32 table needs "
                 r"10 x 4 float32")
    refused_call(so.adagrad_, (table, total.astype(np.float64), [1, 2, 3], grad), ValueError,
                 r"needs 10 x 4 float32")
    refused_call(so.rowwise_adagrad_, (table, total, [1, 2, 3], grad), ValueError,
                 r"sum must be a 1-D array of shape \(rows,\)")
    refused_call(so.sgd_, (table, None, grad), ValueError,
                 r"gradient has 3 rows but the table has 10", lr=0.1)
    refused_call(so.sparse_adam_, (table, total, total, [1, 2, 3], grad), ValueError,
                 r"overlap in memory")
    refused_call(so.sgd_, (table, [1, 2, 3], grad), TypeError, r"lr must be a real number",
                 lr="fast")
    refused_call(so.sgd_, (table, [1, 2, 3], grad.tolist()), TypeError,
                 r"values must be an array", lr=0.1)
    refused_call(so.sgd_, (table, [1, 2, 3], grad), ValueError, r"options.step = 0 is invalid",
                 lr=0.1, step=0)


@pytest.mark.parametrize("kind", sorted(FUNCTIONS))
def test_non_finite_rows_are_skipped_and_counted(kind):
    table, states, idx, values = make_case(kind, torch.float32, rows=20, cols=5, n=12, seed=3)
    idx = torch.tensor([4, 9, 4, 2, 11, 0, 0, 5, 6, 7, 8, 13])
    values[2, 1] = math.nan   # the second occurrence of row 4
    values[3, 0] = -math.inf  # row 2
    function, _, h = FUNCTIONS[kind]
    t, s = table.clone(), [x.clone() for x in states]
    stats = function(t, *s, idx, values, **h)
    assert stats == sparsenorm.RowStats(12, 10, 0, 2)
    for r in (4, 2):
        assert torch.equal(t[r], table[r])
        for after, before in zip(s, states):
            assert torch.equal(after[r], before[r])
    assert not torch.equal(t[9], table[9])
    # non_finite='error' refuses the call before anything is written.
    t, s = table.clone(), [x.clone() for x in states]
    with pytest.raises(sparsenorm.NonFiniteError, match="NaN or infinity"):
        function(t, *s, idx, values, **h, non_finite="error")
    assert torch.equal(t, table) and all(torch.equal(a, b) for a, b in zip(s, states))


def test_optimizer_skips_non_finite_rows():
    p = torch.nn.Parameter(initial_weights(torch.float32))
    opt = so.SparseAdam([p])
    grad = torch.ones(3, DIM)
    grad[1, 2] = math.nan
    p.grad = sparse_grad(NUM, DIM, [5, 6, 7], grad)
    opt.step()
    assert opt.last_stats == [sparsenorm.RowStats(3, 3, 0, 1)]
    assert torch.equal(p[6], initial_weights(torch.float32)[6])
    assert not torch.equal(p[5], initial_weights(torch.float32)[5])
    assert torch.equal(opt.state[p]["exp_avg"][6], torch.zeros(DIM))


# ---------------------------------------------------------------------------
# The package.

def test_imports():
    from sparsenorm import optim

    assert optim is so is sparsenorm.optim
    assert issubclass(so.SGD, torch.optim.Optimizer) and so.SGD.__module__ == "sparsenorm.optim"
    assert set(so.__all__) <= set(dir(so))
    # `import sparsenorm` (and the functions) work without importing torch.
    code = ("import sys, numpy, sparsenorm, sparsenorm.optim as o; "
            "o.sgd_(numpy.ones((2, 2)), [0], numpy.ones((1, 2)), lr=1); "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


FUNCTION_SIGNATURES = [
    (so.sgd_, "sgd_(table, indices, values, *, lr, weight_decay=0.0, weight_decay_mode='l2', "
     "step=1, max_norm=None, constant_norm=None, norm_type=2.0, norm_eps=1e-07, "
     "stochastic_rounding=False, seed=0, non_finite='skip', num_threads=None, backend='auto')",
     "w' = w - lr * (g + weight_decay * w)"),
    (so.adagrad_, "adagrad_(table, sum, indices, values, *, lr=0.01, lr_decay=0.0, "
     "weight_decay=0.0, weight_decay_mode='l2', eps=1e-10, step=1, caffe2_sign=False, "
     "max_norm=None, constant_norm=None, norm_type=2.0, norm_eps=1e-07, "
     "stochastic_rounding=False, seed=0, non_finite='skip', num_threads=None, backend='auto')",
     "w'  = w - clr * g' / (sqrt(sum[r]) + eps)"),
    (so.rowwise_adagrad_, "rowwise_adagrad_(table, sum, indices, values, *, lr=0.01, eps=1e-08, "
     "weight_decay=0.0, weight_decay_mode='none', step=1, max_norm=None, constant_norm=None, "
     "norm_type=2.0, norm_eps=1e-07, stochastic_rounding=False, seed=0, non_finite='skip', "
     "num_threads=None, backend='auto')",
     "sum[r] += mean_j(g'[j] ** 2)"),
    (so.sparse_adam_, "sparse_adam_(table, exp_avg, exp_avg_sq, indices, values, *, lr=0.001, "
     "betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, weight_decay_mode='l2', step=1, "
     "max_norm=None, constant_norm=None, norm_type=2.0, norm_eps=1e-07, "
     "stochastic_rounding=False, seed=0, non_finite='skip', num_threads=None, backend='auto')",
     "step_size = lr * sqrt(1 - beta2 ** t) / (1 - beta1 ** t)"),
]


def plain_signature(function):
    """The signature without type hints (help() prints them too; the names,
    order and defaults are what the benchmark and users call with)."""
    sig = inspect.signature(function)
    return sig.replace(parameters=[q.replace(annotation=inspect.Parameter.empty)
                                   for q in sig.parameters.values()],
                       return_annotation=inspect.Signature.empty)


@pytest.mark.parametrize("function,signature,formula", FUNCTION_SIGNATURES,
                         ids=[f[0].__name__ for f in FUNCTION_SIGNATURES])
def test_function_help_and_examples(function, signature, formula):
    assert function.__name__ + str(plain_signature(function)) == signature
    assert all(q.annotation is not inspect.Parameter.empty
               for q in inspect.signature(function).parameters.values())
    text = pydoc.render_doc(function, renderer=pydoc.plaintext)
    assert "in module sparsenorm.optim" in text.splitlines()[0]
    assert formula in text
    for section in ("Parameters\n", "Returns\n", "Raises\n", "Examples\n"):
        assert section in text
    assert max(len(line) for line in function.__doc__.splitlines()) <= 100
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder().find(function, function.__name__, globs={}):
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


@pytest.mark.parametrize("cls,torch_cls", [(so.SGD, torch.optim.SGD),
                                           (so.Adagrad, torch.optim.Adagrad),
                                           (so.SparseAdam, torch.optim.SparseAdam),
                                           (so.RowWiseAdagrad, None)])
def test_class_keywords_follow_torch(cls, torch_cls):
    ours = inspect.signature(cls.__init__).parameters
    assert all(q.annotation is not inspect.Parameter.empty for k, q in ours.items()
               if k != "self")
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    assert "Parameters\n" in text and "max_norm" in text and "synchronize" in text
    if torch_cls is None:  # FBGEMM's names, in its order
        assert list(ours)[1:6] == ["params", "lr", "eps", "weight_decay", "weight_decay_mode"]
        assert ours["lr"].default == 0.01 and ours["eps"].default == 1e-8
        return
    # Every torch keyword is there, with torch's default (SGD's required lr
    # is None here, refused when no group sets it).
    for name, q in inspect.signature(torch_cls.__init__).parameters.items():
        assert name in ours, name
        if name not in ("self", "params", "lr") or torch_cls is not torch.optim.SGD:
            assert ours[name].default == q.default, name
        assert ours[name].kind == q.kind or q.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD


def test_class_docstring_example():
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = doctest.DocTestFinder().find(so.SGD, "SGD", globs={})
    for test in tests:
        runner.run(test)
    assert runner.tries > 0 and runner.failures == 0


def test_shared_memory_between_parameters_is_refused_and_names_both():
    # Two parameters that are views of one tensor: the core refuses the
    # step before writing either, and the message names both parameters.
    base = torch.randn(20, 4)
    a, b = torch.nn.Parameter(base[:12]), torch.nn.Parameter(base[8:])
    opt = so.SGD([a, b], lr=0.1)
    for p in (a, b):
        p.grad = torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.ones(2, 4), (p.shape[0], 4))
    before = base.clone()
    with pytest.raises(ValueError, match=r"parameter 0 of group 0 .* table and parameter 1 of group 0 "
                                         r".* table share memory"):
        opt.step()
    assert torch.equal(base, before)
