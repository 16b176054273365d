"""Arms × seeds of small networks trained together, each member with its own data, order and augmentation.

Chapter 8's knobs change what a network sees (preprocessed inputs, noisy labels, the
order of presentation, augmented signals) or its architecture (activation, dropout,
width), not how the optimizer updates it. An *arm* fixes one configuration
(:class:`Arm`); every (arm, seed) pair is a *member*. Members whose models have the same
spec are stacked along a new first dimension and run as one ``torch.func.vmap``-ed
``functional_call``, which pays the per-step overhead of a small network once, as
:mod:`accel.experiments.members` does for optimizer grids. Nothing about an update is
re-implemented:

* members that also share an optimizer spec apart from ``lr`` share one torch optimizer
  (:func:`accel.optim.make_optimizer`) run at rate 1, and each member's step is scaled by
  its own rate; only elementwise rules whose step is linear in the rate (SGD and its
  momenta, Adam, ...) are accepted, so every member is updated as if it were alone;
* member (arm, s) starts from ``build_model(arm.model)`` after ``seed_everything(s)``, so
  arms with the same architecture and seed start from the same weights (paired designs);
* its data order is ``arm.order.indices(epoch, labels, s, losses)``
  (:mod:`accel.data.samplers`), the order a :class:`~accel.data.samplers.SampledBatchLoader`
  with seed ``s`` would give; each epoch is ``n // batch_size`` batches (the rest dropped);
* its augmentation draws from its own generator (seeded by ``s``), so it does not depend on
  the other members. Dropout masks come from torch's global generator
  (``vmap(randomness="different")``), seeded once with the first seed: reproducible, but
  shared with the other members of the stack.

Training loss and accuracy are evaluated (eval mode: no dropout, no augmentation) on the
first ``train_eval`` samples of the member's own training set (its labels, noisy ones
included), test metrics on its test split, every ``eval_every`` steps.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from ..data.augment import Augment
from ..data.samplers import SHUFFLE_STRIDE, Order, Reshuffled
from ..device import default_device
from ..models import build_model
from ..optim import check_optimizer, make_optimizer, valid_arguments
from ..schedules import make_schedule
from ..seeding import seed_everything

AUGMENT_STREAM = 7_919  # offsets a member's augmentation generator from its shuffling generator


@dataclass(frozen=True)
class Variant:
    """One version of the data: training inputs and labels, and the test split prepared the same way."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @staticmethod
    def of(x_train: Any, y_train: Any, x_test: Any, y_test: Any) -> "Variant":
        return Variant(torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(y_train, dtype=torch.long),
                       torch.as_tensor(x_test, dtype=torch.float32), torch.as_tensor(y_test, dtype=torch.long))


@dataclass(frozen=True)
class Arm:
    """One configuration: a model spec, an optimizer spec (with ``lr``), the data variant it trains
    on, the order it sees the samples in, an optional augmentation, labels for the table, and
    optionally its own seeds (an arm whose effect is large may need fewer)."""

    name: str
    model: Mapping[str, Any]
    optimizer: Mapping[str, Any]
    data: str = "default"
    order: Order = field(default_factory=Reshuffled)
    augment: Augment | None = None
    labels: Mapping[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] | None = None  # this arm's seeds, instead of those of the call

    def with_lr(self, lr: float) -> "Arm":
        return replace(self, optimizer={**self.optimizer, "lr": float(lr)})


def _spec_key(spec: Mapping[str, Any], drop: tuple[str, ...] = ()) -> str:
    return json.dumps({k: v for k, v in sorted(spec.items()) if k not in drop}, default=str)


def check_arms(arms: Sequence[Arm], data: Mapping[str, Variant]) -> None:
    """Refuse what cannot be trained here, naming the valid choices, before any work."""
    if not arms:
        raise ValueError("need at least one arm")
    shapes = {tuple(v.x_train.shape) for v in data.values()}
    if len(shapes) > 1:
        raise ValueError(f"every data variant must have the same training shape, got {sorted(shapes)}")
    for arm in arms:
        if arm.data not in data:
            raise ValueError(f"arm {arm.name!r} trains on data {arm.data!r}; valid: {', '.join(data)}")
        if not isinstance(arm.order, Order):
            raise ValueError(f"arm {arm.name!r}: order must be an accel.data.samplers.Order, got {arm.order!r}")
        info = check_optimizer(arm.optimizer.get("name"))
        if not info.elementwise or info.create_graph:
            raise ValueError(f"arm {arm.name!r}: optimizer {arm.optimizer['name']!r} is not elementwise; "
                             f"stacked members would not be updated independently")
        if not arm.optimizer.get("lr", 0) > 0:
            raise ValueError(f"arm {arm.name!r} needs a learning rate lr > 0, got {arm.optimizer.get('lr')!r}")
        if arm.optimizer.get("weight_decay", 0) or arm.optimizer.get("lr_decay", 0):
            raise ValueError(f"arm {arm.name!r}: weight_decay and lr_decay are not supported here")


class _Block:
    """Members sharing a model spec and an optimizer spec except ``lr``: stacked leaves.

    ``lr`` is the rate the optimizer's parameter group runs at: the members' common rate,
    or 1 when they differ, in which case :meth:`rescale` multiplies each member's step by
    its own rate after the optimizer's step.
    """

    def __init__(self, nets: list[torch.nn.Module], lrs: list[float], device: torch.device):
        self.names = [n for n, _ in nets[0].named_parameters()]
        self.leaves = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in nets]).to(device)
                       .requires_grad_() for n in self.names}
        self.shared = len(set(lrs)) == 1
        self.lr = float(lrs[0]) if self.shared else 1.0
        self.rates = torch.tensor(lrs, dtype=torch.float32, device=device)
        self.before: list[torch.Tensor] = []

    def remember(self) -> None:
        if not self.shared:
            with torch.no_grad():
                self.before = [p.detach().clone() for p in self.leaves.values()]

    def rescale(self) -> None:
        if self.shared:
            return
        with torch.no_grad():
            for p, b in zip(self.leaves.values(), self.before):
                p.sub_(b).mul_(self.rates.view(-1, *([1] * (p.ndim - 1)))).add_(b)


class _Group:
    """Members with one model spec: their blocks (one per optimizer spec), one vmapped forward."""

    def __init__(self, members: list[tuple[int, Arm, int]], nets: list[torch.nn.Module], device: torch.device):
        by_opt: dict[str, list[int]] = {}
        for pos, (_, arm, _) in enumerate(members):
            by_opt.setdefault(_spec_key(arm.optimizer, ("lr",)), []).append(pos)
        # members re-ordered so that each block is a contiguous slice of the stack
        order = [pos for positions in by_opt.values() for pos in positions]
        self.members = [members[p] for p in order]
        nets = [nets[p] for p in order]
        self.blocks: list[tuple[str, _Block]] = []
        start = 0
        for key, positions in by_opt.items():
            n = len(positions)
            lrs = [float(a.optimizer["lr"]) for _, a, _ in self.members[start:start + n]]
            self.blocks.append((key, _Block(nets[start:start + n], lrs, device)))
            start += n
        self.base = copy.deepcopy(nets[0]).to("meta")
        self.fwd = vmap(lambda p, xb: functional_call(self.base, p, (xb,)), randomness="different")

    def params(self) -> dict[str, torch.Tensor]:
        if len(self.blocks) == 1:
            return self.blocks[0][1].leaves
        names = self.blocks[0][1].names
        return {n: torch.cat([b.leaves[n] for _, b in self.blocks]) for n in names}


def _optimizers(groups: list[_Group], arms: Sequence[Arm]) -> list[tuple[torch.optim.Optimizer, list[_Block]]]:
    """One torch optimizer per optimizer spec (apart from ``lr``), one parameter group per block."""
    specs = {_spec_key(a.optimizer, ("lr",)): {k: v for k, v in a.optimizer.items() if k != "lr"} for a in arms}
    out = []
    for key, spec in specs.items():
        blocks = [b for g in groups for k, b in g.blocks if k == key]
        if "foreach" in valid_arguments(spec["name"]):
            spec = {"foreach": True, **spec}   # one kernel per operation over all tensors
        opt = make_optimizer(list(blocks[0].leaves.values()), {**spec, "lr": blocks[0].lr})
        for b in blocks[1:]:
            opt.add_param_group({"params": list(b.leaves.values()), "lr": b.lr})
        out.append((opt, blocks))
    return out


def _member_losses(group: _Group, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                   chunk: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample cross-entropy ``(K, n)`` and correctness of every member on its own ``x[k], y[k]``."""
    group.base.eval()
    losses, correct = [], []
    with torch.no_grad():
        for lo in range(0, x.shape[0], chunk):
            part = {n: p[lo:lo + chunk] for n, p in params.items()}
            logits = group.fwd(part, x[lo:lo + chunk])
            k, n = logits.shape[:2]
            losses.append(F.cross_entropy(logits.reshape(k * n, -1), y[lo:lo + chunk].reshape(-1),
                                          reduction="none").view(k, n))
            correct.append(logits.argmax(-1) == y[lo:lo + chunk])
    group.base.train()
    return torch.cat(losses), torch.cat(correct)


def train_arms(arms: Sequence[Arm], seeds: Sequence[int], data: Mapping[str, Variant], *, steps: int,
               batch_size: int, eval_every: int | None = None, test_every: int | None = None,
               train_eval: int | None = 1000, target: tuple[str, float] | None = None,
               stop_at_target: bool = False, schedule: dict[str, Any] | None = None,
               device: torch.device | str | None = None, keep_states: bool = False
               ) -> pd.DataFrame | tuple[pd.DataFrame, dict[tuple[str, int], dict[str, torch.Tensor]]]:
    """Train every (arm, seed) for ``steps`` steps of ``batch_size``; one row per member and evaluation.

    Columns: ``arm``, the arm's labels, ``seed``, ``lr``, ``step``, ``train_loss``, ``train_acc``,
    ``test_loss``, ``test_acc`` (NaN accuracies for a diverged member). ``target`` is a pair
    ``(metric, value)``, e.g. ``("train_loss", 1.0)`` or ``("train_acc", 0.75)``
    (:func:`hit`); with ``stop_at_target`` the run stops once every member has reached it.
    Test metrics are computed every ``test_every`` steps (default: every evaluation) and at
    the last one; rows in between have NaN there. ``schedule`` (an :mod:`accel.schedules` spec
    over ``steps``) scales every member's rate by the same factor, stepped after each update.
    ``keep_states`` also returns each member's final parameters by ``(arm name, seed)``.
    """
    check_arms(arms, data)
    if target is not None:
        hit(target[0], 0.0, target[1])  # validates the metric's name
    if len(set(seeds)) != len(seeds) or not seeds:
        raise ValueError(f"seeds must be distinct and non-empty, got {list(seeds)}")
    if len({a.name for a in arms}) != len(arms):
        raise ValueError("arm names must be distinct")
    names = list(data)
    n = len(next(iter(data.values())).x_train)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be an int in [1, {n}], got {batch_size!r}")
    device = torch.device(device) if device is not None else default_device()
    eval_every = eval_every or steps
    test_every = test_every or eval_every
    x_bank = torch.stack([data[k].x_train for k in names]).to(device)
    y_bank = torch.stack([data[k].y_train for k in names]).to(device)
    xt_bank = torch.stack([data[k].x_test for k in names]).to(device)
    yt_bank = torch.stack([data[k].y_test for k in names]).to(device)
    te = n if train_eval is None else min(train_eval, n)

    members = [(i, arm, int(s)) for i, (arm, s) in enumerate((a, s) for a in arms for s in (a.seeds or seeds))]
    by_model: dict[str, list[tuple[int, Arm, int]]] = {}
    for m in members:
        by_model.setdefault(_spec_key(m[1].model), []).append(m)
    groups = []
    for spec_members in by_model.values():
        nets = []
        for _, arm, s in spec_members:
            seed_everything(s)
            nets.append(build_model(dict(arm.model)))
        if any(True for _ in nets[0].buffers()):
            raise ValueError("models with buffers (BatchNorm statistics) cannot be stacked here")
        groups.append(_Group(spec_members, nets, device))
    optimizers = _optimizers(groups, arms)
    schedulers = [make_schedule(opt, schedule, steps) for opt, _ in optimizers] if schedule else []
    seed_everything(int(seeds[0]))  # dropout's masks (vmap's "different" randomness)
    for g in groups:
        g.vidx = torch.tensor([names.index(a.data) for _, a, _ in g.members], device=device)
        g.aug = [(pos, a.augment, torch.Generator().manual_seed(s * SHUFFLE_STRIDE + AUGMENT_STREAM))
                 for pos, (_, a, s) in enumerate(g.members) if a.augment is not None and a.augment.active]
        g.needs = [pos for pos, (_, a, _) in enumerate(g.members) if a.order.needs_losses]

    per_epoch = n // batch_size
    reached: dict[int, float] = {}
    rows: list[dict[str, Any]] = []
    for t in range(1, steps + 1):
        j = (t - 1) % per_epoch
        total = 0.0
        for g in groups:
            if j == 0:
                _new_epoch(g, (t - 1) // per_epoch, x_bank, y_bank)
            idx = g.perm[:, j * batch_size:(j + 1) * batch_size].to(device)
            xb, yb = x_bank[g.vidx[:, None], idx], y_bank[g.vidx[:, None], idx]
            for pos, augment, gen in g.aug:
                xb[pos] = augment(xb[pos], gen)
            logits = g.fwd(g.params(), xb)
            k = logits.shape[0]
            loss = F.cross_entropy(logits.reshape(k * batch_size, -1), yb.reshape(-1), reduction="none")
            total = total + loss.view(k, batch_size).mean(1).sum()
        for opt, blocks in optimizers:
            opt.zero_grad(set_to_none=True)
        total.backward()  # one backward pass for every member (no member's loss reaches another's leaves)
        for opt, blocks in optimizers:
            for b in blocks:
                b.remember()
            opt.step()
            for b in blocks:
                b.rescale()
        for scheduler in schedulers:
            scheduler.step()
        if t % eval_every == 0 or t == steps:
            with_test = t % test_every == 0 or t == steps
            new = _evaluate(groups, t, x_bank[:, :te], y_bank[:, :te], xt_bank, yt_bank, with_test)
            if target is not None:
                for r in new:
                    if hit(target[0], r[target[0]], target[1]):
                        reached.setdefault(r["member"], t)
                if stop_at_target and len(reached) == len(members):
                    if not with_test:
                        new = _evaluate(groups, t, x_bank[:, :te], y_bank[:, :te], xt_bank, yt_bank, True)
                    rows += new
                    break
            rows += new
    table = pd.DataFrame(rows).sort_values(["member", "step"], kind="stable", ignore_index=True)
    if not keep_states:
        return table
    states = {}
    for g in groups:
        params = g.params()
        for pos, (_, arm, s) in enumerate(g.members):
            states[(arm.name, s)] = {name: p[pos].detach().cpu().clone() for name, p in params.items()}
    return table, states


def _new_epoch(g: _Group, epoch: int, x_bank: torch.Tensor, y_bank: torch.Tensor) -> None:
    """Every member's order for this epoch; loss-proportional members score their samples first."""
    losses: dict[int, torch.Tensor] = {}
    if g.needs:
        params = {name: p[g.needs] for name, p in g.params().items()}
        vs = g.vidx[g.needs]
        per_sample, _ = _member_losses(g, params, x_bank[vs], y_bank[vs])
        losses = {pos: per_sample[i].cpu() for i, pos in enumerate(g.needs)}
    perms = []
    for pos, (_, arm, s) in enumerate(g.members):
        labels = y_bank[g.vidx[pos]].cpu()
        perms.append(arm.order.indices(epoch, labels, s, losses.get(pos)))
    g.perm = torch.stack(perms)


def _evaluate(groups: list[_Group], step: int, x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor,
              yt: torch.Tensor, with_test: bool = True) -> list[dict[str, Any]]:
    rows = []
    nan = np.full(max(len(g.members) for g in groups), np.nan)
    for g in groups:
        params = g.params()
        metrics = {"test": (nan, nan)}
        for split, (xs, ys) in {"train": (x, y), "test": (xt, yt)}.items():
            if split == "test" and not with_test:
                continue
            loss, correct = _member_losses(g, params, xs[g.vidx], ys[g.vidx])
            mean = loss.mean(1).cpu().numpy().astype(float)
            acc = correct.float().mean(1).cpu().numpy().astype(float)
            metrics[split] = (mean, np.where(np.isfinite(mean), acc, np.nan))
        for pos, (k, arm, s) in enumerate(g.members):
            row = {"arm": arm.name, **arm.labels, "member": k, "seed": s, "lr": float(arm.optimizer["lr"]),
                   "step": step}
            for split, (mean, acc) in metrics.items():
                row[f"{split}_loss"], row[f"{split}_acc"] = float(mean[pos]), float(acc[pos])
            rows.append(row)
    return rows


METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")


def hit(metric: str, value: float, target: float) -> bool:
    """Whether ``value`` of ``metric`` has reached ``target``: a loss at or below it, an accuracy at or above."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    return bool(value <= target) if metric.endswith("_loss") else bool(value >= target)
