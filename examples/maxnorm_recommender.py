#!/usr/bin/python3
"""What a max-norm constraint does to a matrix-factorization recommender.

    /usr/bin/python3 examples/maxnorm_recommender.py                      # built-in data
    /usr/bin/python3 examples/maxnorm_recommender.py --ratings ml-100k/u.data

A rating model in the classic form: r(u, i) ~ mu + b_u + c_i + <p_u, q_i>,
user and item embeddings in nn.Embedding(sparse=True), trained on squared
error with sparse Adagrad from `sparsenorm.optim`. Four settings, each
trained from several seeds:

  none          no regularization
  l2            weight decay on the rows each step touches (lazy L2, the
                usual form for sparse embeddings), its strength tuned
  max-norm      every touched embedding row kept inside a ball of radius c
                in the same pass as the Adagrad update (sparsenorm), c tuned
  torch max_norm  nn.Embedding(max_norm=c) with torch.optim.Adagrad, the
                same c: what PyTorch users write today, timed beside it

This is max-norm constrained matrix factorization (Srebro, Rennie and
Jaakkola, "Maximum-Margin Matrix Factorization", 2005; Lee, Recht,
Salakhutdinov, Srebro and Tropp, "Practical large-scale optimization for
max-norm regularization", 2010: projected gradient steps on the row norms).
The regularizers' strengths are tuned the same way: each from a grid of
the same size, by the validation error of seed 0 after the last epoch;
then every setting is trained from every seed and scored on the test set.

It prints train and test RMSE per epoch and seconds per epoch, and writes one
picture: the test RMSE curves of each setting (mean over seeds, with the
spread) and the distribution of item-embedding norms at the end.

Data: by default a synthetic rating set (make_synthetic below: low-rank
truth, Zipf item popularity, log-normal user activity, noise), or a
MovieLens ratings file given by path in any of its formats: u.data (tab
separated), ratings.dat ("::" separated), ratings.csv (with a header line).
docs/EXAMPLES.md says what the example shows, measured.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import sparsenorm.optim

# ---------------------------------------------------------------------------
# Data


def make_synthetic(seed=0, users=4000, items=2000, rank=6, ratings=120_000, noise=0.8):
    """A synthetic rating set with the features that make regularization
    matter in real ones.

    Truth: r = 3.5 + b_u + c_i + <p_u, q_i> with p_u, q_i ~ N(0, 0.55^2 I)
    of rank `rank`, b_u ~ N(0, 0.3^2), c_i ~ N(0, 0.4^2). Which pairs are
    rated: item popularity Zipf (the k-th most popular item is drawn with
    probability proportional to 1/k), user activity log-normal, so most
    items and users have few ratings (where an unregularized model
    overfits). Observed: truth + N(0, noise^2), rounded to the nearest half
    star and clipped to [1, 5], as rating scales are. Pairs are distinct.
    """
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.55, (users, rank))
    q = rng.normal(0, 0.55, (items, rank))
    b, c = rng.normal(0, 0.3, users), rng.normal(0, 0.4, items)
    item_weight = 1.0 / np.arange(1, items + 1)
    item_weight = item_weight[rng.permutation(items)]
    user_weight = rng.lognormal(0.0, 1.0, users)
    draws = int(ratings * 1.3)  # duplicates are dropped below
    u = rng.choice(users, draws, p=user_weight / user_weight.sum())
    i = rng.choice(items, draws, p=item_weight / item_weight.sum())
    _, first = np.unique(u.astype(np.int64) * items + i, return_index=True)
    first = np.sort(first)[:ratings]
    u, i = u[first], i[first]
    truth = 3.5 + b[u] + c[i] + np.einsum("nk,nk->n", p[u], q[i])
    r = np.clip(np.round(2 * (truth + rng.normal(0, noise, len(u)))) / 2, 1.0, 5.0)
    return u, i, r.astype(np.float32)


def read_movielens(path):
    """(users, items, ratings) from a MovieLens file, ids renumbered from 0."""
    path = Path(path)
    text = path.read_text(encoding="latin-1").splitlines()
    if not text:
        raise SystemExit(f"{path}: the file is empty")
    if "::" in text[0]:
        rows = [line.split("::") for line in text if line]
    elif "\t" in text[0]:
        rows = [line.split("\t") for line in text if line]
    else:
        rows = [line.split(",") for line in text[1:] if line]  # ratings.csv: a header line
    try:
        u = np.array([row[0] for row in rows])
        i = np.array([row[1] for row in rows])
        r = np.array([float(row[2]) for row in rows], dtype=np.float32)
    except (IndexError, ValueError) as e:
        raise SystemExit(f"{path}: not a MovieLens ratings file (u.data, ratings.dat or "
                         f"ratings.csv): {e}") from e
    _, u = np.unique(u, return_inverse=True)
    _, i = np.unique(i, return_inverse=True)
    return u, i, r


def split(n, seed, parts=(0.8, 0.1, 0.1)):
    order = np.random.default_rng(seed + 1000).permutation(n)
    a = int(parts[0] * n)
    b = a + int(parts[1] * n)
    return order[:a], order[a:b], order[b:]


# ---------------------------------------------------------------------------
# Model


class Factorization(torch.nn.Module):
    def __init__(self, users, items, dim, mean, seed, max_norm=None):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        # torch's forward-time renorm only for the "torch max_norm" setting.
        self.p = torch.nn.Embedding(users, dim, sparse=True, max_norm=max_norm)
        self.q = torch.nn.Embedding(items, dim, sparse=True, max_norm=max_norm)
        self.b = torch.nn.Embedding(users, 1, sparse=True)
        self.c = torch.nn.Embedding(items, 1, sparse=True)
        with torch.no_grad():
            self.p.weight.normal_(0, 0.1, generator=g)
            self.q.weight.normal_(0, 0.1, generator=g)
            self.b.weight.zero_()
            self.c.weight.zero_()
        self.mean = mean

    def forward(self, u, i):
        dot = (self.p(u) * self.q(i)).sum(1)
        return self.mean + self.b(u).squeeze(1) + self.c(i).squeeze(1) + dot


def rmse(model, u, i, r):
    with torch.no_grad():
        err = model(u, i) - r
        return float(torch.sqrt((err * err).mean()))


def make_optimizer(kind, model, lr, strength):
    factors = [model.p.weight, model.q.weight]
    biases = [model.b.weight, model.c.weight]
    if kind == "torch max_norm":
        return torch.optim.Adagrad(factors + biases, lr=lr)
    if kind == "l2":
        return sparsenorm.optim.Adagrad(
            [{"params": factors, "weight_decay": strength}, {"params": biases}], lr=lr)
    if kind == "max-norm":
        return sparsenorm.optim.Adagrad(
            [{"params": factors, "max_norm": strength}, {"params": biases}], lr=lr)
    return sparsenorm.optim.Adagrad(factors + biases, lr=lr)


def train(kind, data, args, seed, strength, log=None):
    """Trains one setting from one seed; returns the per-epoch test (or
    validation) RMSE, the seconds per epoch and the final item norms."""
    (u_tr, i_tr, r_tr), evaluate, users, items = data
    torch.manual_seed(seed)
    model = Factorization(users, items, args.dim, float(r_tr.mean()), seed,
                          max_norm=strength if kind == "torch max_norm" else None)
    opt = make_optimizer(kind, model, args.lr, strength)
    n = len(r_tr)
    g = torch.Generator().manual_seed(seed)
    curve, seconds = [], []
    for epoch in range(args.epochs):
        order = torch.randperm(n, generator=g)
        start = time.perf_counter()
        for k in range(0, n, args.batch):
            batch = order[k:k + args.batch]
            opt.zero_grad(set_to_none=True)
            err = model(u_tr[batch], i_tr[batch]) - r_tr[batch]
            (err * err).mean().backward()
            opt.step()
        seconds.append(time.perf_counter() - start)
        curve.append(rmse(model, *evaluate))
        if log is not None:
            log(f"  {kind:15s} seed {seed} epoch {epoch + 1:2d}: train RMSE "
                f"{rmse(model, u_tr, i_tr, r_tr):.4f}, test RMSE {curve[-1]:.4f}, "
                f"{seconds[-1]:.2f} s")
    norms = model.q.weight.detach().norm(dim=1).numpy()
    return np.array(curve), np.array(seconds), norms


# ---------------------------------------------------------------------------
# The experiment


# Adagrad divides each step by the root of the summed squared gradients, so
# once the decay term wd * w dominates a row's gradient the step no longer
# depends on wd: stronger L2 than about 1e-3 gives the same (collapsed)
# model here. The L2 grid therefore reaches down to 1e-5.
GRIDS = {"l2": [1e-5, 1e-4, 1e-3, 1e-2], "max-norm": [0.5, 1.0, 1.5, 2.5]}


def tensors(u, i, r, index):
    return (torch.from_numpy(u[index].astype(np.int64)), torch.from_numpy(i[index].astype(np.int64)),
            torch.from_numpy(r[index]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratings", help="a MovieLens ratings file (u.data, ratings.dat, ratings.csv); "
                    "default: the built-in synthetic set")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--out", default="maxnorm_recommender.png", help="the picture (PNG)")
    ap.add_argument("--tiny", action="store_true", help="a few seconds' run, for the tests")
    args = ap.parse_args()
    if args.tiny:
        args.epochs, args.seeds, args.dim = 2, 2, 8

    if args.ratings:
        u, i, r = read_movielens(args.ratings)
        source = args.ratings
    else:
        u, i, r = make_synthetic(ratings=8000 if args.tiny else 120_000)
        source = "synthetic (make_synthetic, seed 0)"
    users, items = int(u.max()) + 1, int(i.max()) + 1
    tr, va, te = split(len(r), 0)
    print(f"data: {source}: {len(r)} ratings, {users} users, {items} items; "
          f"train/validation/test {len(tr)}/{len(va)}/{len(te)}")
    train_set = tensors(u, i, r, tr)

    # Tune each regularizer on the validation set, seed 0, the same grid size.
    chosen = {"none": None}
    for kind, grid in GRIDS.items():
        scores = []
        for strength in grid:
            curve, _, _ = train(kind, (train_set, tensors(u, i, r, va), users, items), args, 0,
                                strength)
            scores.append(curve[-1])
            print(f"tuning {kind}: {strength} -> validation RMSE {curve[-1]:.4f}")
        chosen[kind] = grid[int(np.argmin(scores))]
    chosen["torch max_norm"] = chosen["max-norm"]
    print("chosen:", ", ".join(f"{k} {v}" for k, v in chosen.items() if v is not None))

    results = {}
    test = tensors(u, i, r, te)
    for kind, strength in chosen.items():
        runs = [train(kind, (train_set, test, users, items), args, seed, strength, log=print)
                for seed in range(args.seeds)]
        curves = np.stack([c for c, _, _ in runs])
        seconds = np.concatenate([s for _, s, _ in runs])
        results[kind] = (curves, seconds, runs[0][2], strength)

    print()
    print(f"{'setting':15s} {'strength':>8s} {'test RMSE (mean over seeds)':>28s} "
          f"{'best epoch':>10s} {'s/epoch':>8s}")
    for kind, (curves, seconds, _, strength) in results.items():
        mean = curves.mean(0)
        spread = curves[:, -1].max() - curves[:, -1].min()
        print(f"{kind:15s} {'-' if strength is None else strength:>8} "
              f"{mean[-1]:>20.4f} +- {spread / 2:.4f} {int(np.argmin(mean)) + 1:>10d} "
              f"{np.median(seconds):>8.2f}")
    ours = np.median(results["max-norm"][1])
    theirs = np.median(results["torch max_norm"][1])
    print(f"seconds per epoch, nn.Embedding(max_norm) + torch Adagrad over sparsenorm's fused "
          f"step: {theirs / ours:.2f}")
    plot(results, args, source)


def plot(results, args, source):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"none": "#7f7f7f", "l2": "#1f77b4", "max-norm": "#d62728", "torch max_norm": "#ff9896"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    epochs = np.arange(1, args.epochs + 1)
    for kind, (curves, _, norms, strength) in results.items():
        label = kind if strength is None else f"{kind} ({strength})"
        mean = curves.mean(0)
        left.plot(epochs, mean, color=colors[kind], label=label, lw=2 if kind == "max-norm" else 1.2,
                  ls="--" if kind == "torch max_norm" else "-")
        left.fill_between(epochs, curves.min(0), curves.max(0), color=colors[kind], alpha=0.15)
        right.hist(norms, bins=40, histtype="step", color=colors[kind], label=label,
                   lw=2 if kind == "max-norm" else 1.2)
    left.set_xlabel("epoch")
    left.set_ylabel("test RMSE")
    left.set_title(f"test error, mean over {args.seeds} seeds (band: min to max)")
    left.legend()
    right.set_xlabel("item embedding norm at the end (seed 0)")
    right.set_ylabel("items")
    right.set_title("where the item vectors end up")
    right.legend()
    fig.suptitle(f"max-norm constrained matrix factorization, dim {args.dim}, Adagrad lr {args.lr}; "
                 f"data: {Path(source).name if args.ratings else 'synthetic'}", fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
