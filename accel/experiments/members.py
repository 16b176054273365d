"""Many small networks, each with its own optimizer settings, trained as one vectorized model.

A learning-rate × weight-decay grid over seeds is a hundred tiny networks; trained one
after the other, each pays a full training loop's per-step overhead for a step that is a
few small matrix products. Here the members' parameters are stacked along a new first
dimension and one forward pass (``torch.func.functional_call`` under ``vmap``) computes
every member's loss. Nothing about the update is re-implemented:

* members whose optimizer specs agree except for ``lr`` and ``weight_decay`` share one
  instance of torch's own optimizer class (built by :func:`accel.optim.make_optimizer`)
  over their stacked parameters. Only rules marked ``elementwise`` in :mod:`accel.optim.info`
  are accepted: they update each scalar from its own history, so every member is updated
  as if it were trained alone. The class runs at learning rate 1 and each member's step
  is scaled by its own rate (every accepted rule's step is linear in the rate): one
  optimizer per rule instead of one per grid cell, whose per-step overhead would
  otherwise cost as much as the training;
* ``weight_decay`` may differ per member; it is applied the way torch's class applies
  it, as L2 added to the gradient (SGD, Adam, RMSprop, Adagrad, ...) or, for AdamW and
  the ``decoupled_weight_decay`` variants, by multiplying the weights by (1 − lr·wd)
  before the step; and, as :func:`accel.optim.make_optimizer` does for a module, only
  weights (≥ 2 dimensions per member) are decayed, never biases;
* member k's initial weights are those of ``build()`` after ``seed_everything(seed_k)``
  (as in :func:`accel.training.train_seeds`); its data order is a fresh permutation per
  epoch from a generator seeded with ``seed_k``, so members with the same seed start
  from the same weights and see the same batches (a paired design).

The seed ensembles of :func:`accel.training.train_seeds` stack seeds of *one*
configuration; this module stacks configurations too, which a tuning grid needs.
Models with buffers (BatchNorm's running statistics) or dropout are refused.
"""
from __future__ import annotations

import copy
import json
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from ..device import default_device
from ..optim import check_optimizer, make_optimizer
from ..schedules import make_schedule
from ..seeding import seed_everything

Split = tuple[torch.Tensor, torch.Tensor]


def decoupled(spec: Mapping[str, Any]) -> bool:
    """Whether torch applies ``spec``'s weight decay to the weights (AdamW) rather than the gradient."""
    return spec["name"] == "adamw" or bool(spec.get("decoupled_weight_decay", False))


def _per_member(v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return v.view(-1, *([1] * (p.ndim - 1)))


def scaled_step(optimizer: torch.optim.Optimizer, params: Sequence[torch.Tensor], lr: torch.Tensor,
                decay: torch.Tensor | None = None, *, decoupled_decay: bool = False,
                decayed: Sequence[bool] | None = None) -> None:
    """One step of torch's ``optimizer`` (built at lr 1) over stacked ``params``, member k at rate ``lr[k]``.

    Every rule accepted here moves the weights by lr × a direction that does not depend on lr
    (SGD and its momenta, Adagrad without ``lr_decay``, RMSprop, Adadelta, Adam, AdamW, RAdam,
    NAdam), so scaling the step taken at lr 1 (times the schedule's factor, read from the
    optimizer) by ``lr[k]`` is member k's own step, up to rounding. ``decay[k]`` is applied as
    torch applies ``weight_decay``: before the step to the weights (decoupled, AdamW) or to the
    gradient (L2), on the tensors flagged in ``decayed`` (default: all).
    """
    factor = optimizer.param_groups[0]["lr"]   # the schedule's f(t)
    with torch.no_grad():
        if decay is not None:
            for p, on in zip(params, decayed if decayed is not None else [True] * len(params)):
                if not on:
                    continue
                wd = _per_member(decay, p)
                if decoupled_decay:   # torch AdamW: param.mul_(1 - lr * weight_decay)
                    p.mul_(1 - factor * _per_member(lr, p) * wd)
                else:                 # torch SGD/Adam/...: grad = grad.add(param, alpha=weight_decay)
                    p.grad.add_(p * wd)
        before = [p.detach().clone() for p in params]
    optimizer.step()
    with torch.no_grad():
        for p, b in zip(params, before):
            p.sub_(b).mul_(_per_member(lr, p)).add_(b)


class _Group:
    """Members sharing a spec apart from ``lr`` and ``weight_decay``: stacked leaves, one torch
    optimizer at lr 1, each member's step scaled by its own rate (:func:`scaled_step`)."""

    def __init__(self, spec: dict[str, Any], modules: list[torch.nn.Module], lrs: list[float],
                 decays: list[float], schedule: dict[str, Any] | None, steps: int, device: torch.device):
        self.spec = spec
        self.names = [n for n, _ in modules[0].named_parameters()]
        self.leaves = {n: torch.stack([dict(m.named_parameters())[n].detach() for m in modules]).to(device)
                       .requires_grad_() for n in self.names}
        self.optimizer = make_optimizer(list(self.leaves.values()), {**spec, "lr": 1.0, "weight_decay": 0.0})
        self.scheduler = make_schedule(self.optimizer, schedule, steps) if schedule else None
        self.lr = torch.tensor(lrs, dtype=torch.float32, device=device)
        self.decay = torch.tensor(decays, dtype=torch.float32, device=device) if any(decays) else None
        self.decayed = [p.ndim - 1 >= 2 for p in self.leaves.values()]   # weights only, as make_optimizer

    def step(self) -> None:
        scaled_step(self.optimizer, list(self.leaves.values()), self.lr, self.decay,
                    decoupled_decay=decoupled(self.spec), decayed=self.decayed)
        if self.scheduler is not None:
            self.scheduler.step()


def _check_members(members: Sequence[Mapping[str, Any]]) -> None:
    if not members:
        raise ValueError("need at least one member")
    for m in members:
        if "spec" not in m or "seed" not in m:
            raise ValueError(f"each member needs a 'spec' and a 'seed', got {sorted(m)}")
        info = check_optimizer(m["spec"].get("name"))
        if not info.elementwise:
            raise ValueError(f"optimizer {m['spec']['name']!r} couples the scalars of a tensor (layer-wise or "
                             f"matrix-wise rule), so stacked members would not be updated independently; "
                             f"train it with accel.training.train_seeds")
        if m["spec"].get("weight_decay", 0) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {m['spec']['weight_decay']}")
        if not m["spec"].get("lr", 0) > 0:
            raise ValueError(f"each member's spec needs a learning rate lr > 0, got {m['spec'].get('lr')!r}")
        if m["spec"].get("lr_decay", 0):
            raise ValueError("Adagrad's lr_decay makes the step non-linear in lr; not supported here")


def _key(spec: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in sorted(spec.items()) if k not in ("lr", "weight_decay")}, default=str)


def evaluate_members(fwd: Callable, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
              chunk: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Mean cross-entropy and accuracy of every member on ``(x, y)``; NaN for a diverged member."""
    losses, accs = [], []
    k_total = next(iter(params.values())).shape[0]
    with torch.no_grad():
        for lo in range(0, k_total, chunk):
            part = {n: p[lo:lo + chunk] for n, p in params.items()}
            logits = fwd(part, x.expand(len(next(iter(part.values()))), *x.shape))
            k = logits.shape[0]
            loss = F.cross_entropy(logits.reshape(k * len(y), -1), y.repeat(k), reduction="none")
            losses.append(loss.view(k, -1).mean(1))
            accs.append((logits.argmax(-1) == y).float().mean(1))
    loss, acc = torch.cat(losses).cpu().numpy().astype(float), torch.cat(accs).cpu().numpy().astype(float)
    return loss, np.where(np.isfinite(loss), acc, np.nan)


def member_loss(fwd: Callable, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
                idx: torch.Tensor) -> torch.Tensor:
    """Sum over members of each member's mean cross-entropy on its own batch ``x[idx[k]]``.

    ``idx`` is (members, batch); summing the members' means gives every member the gradient
    it would get trained alone (the members share no parameters).
    """
    logits = fwd(params, x[idx])
    k, b = idx.shape
    loss = F.cross_entropy(logits.reshape(k * b, -1), y[idx].reshape(-1), reduction="none")
    return loss.view(k, b).mean(1).sum()


def check_stackable(module: torch.nn.Module, fallback: str = "accel.training.train_seeds") -> None:
    """Refuse what a stacked ``functional_call`` over parameters alone would get wrong."""
    if any(True for _ in module.buffers()):
        raise ValueError(f"models with buffers (BatchNorm running statistics) cannot be stacked here; "
                         f"use {fallback}")
    if any(isinstance(m, torch.nn.modules.dropout._DropoutNd) for m in module.modules()):
        raise ValueError(f"models with dropout draw random masks, which vmap would share or refuse; "
                         f"use {fallback}")


def stacked_forward(module: torch.nn.Module) -> Callable:
    """``fwd(params, x)``: ``module``'s forward over members stacked along dim 0 of params and x."""
    base = copy.deepcopy(module).to("meta")
    return vmap(lambda p, xb: functional_call(base, p, (xb,)))


def train_members(build: Callable[[], torch.nn.Module], train: Split, members: Sequence[Mapping[str, Any]], *,
                  steps: int, batch_size: int, evals: Mapping[str, Split] | None = None,
                  eval_every: int | None = None, train_eval: int | None = None,
                  schedule: dict[str, Any] | None = None, device: torch.device | str | None = None
                  ) -> pd.DataFrame:
    """Train every member (``{"spec": optimizer spec, "seed": int, **labels}``) for ``steps`` steps.

    ``schedule`` (an :mod:`accel.schedules` spec, e.g. ``{"name": "cosine"}``) scales every
    member's learning rate by the same factor f(t), stepped after each update, as in
    :class:`accel.module.Classifier`; decoupled decay follows the scheduled rate, as in torch.
    ``device`` defaults to :func:`accel.device.default_device` (the GPU when there is one);
    the data orders are drawn on the CPU, so they do not depend on it.

    Batches of ``batch_size`` are drawn without replacement, epoch by epoch (the last
    incomplete batch of an epoch is dropped). Every ``eval_every`` steps and at the end,
    each member is evaluated on the first ``train_eval`` training samples (all of them by
    default; columns ``train_loss``, ``train_acc``) and on each split of ``evals``
    (``<name>_loss``, ``<name>_acc``). Returns one row per member and evaluation: the
    member's labels, ``member`` (its index), ``seed``, ``optimizer``, ``lr``,
    ``weight_decay``, ``step`` and the metrics; a diverged member (non-finite loss)
    has NaN accuracies.
    """
    _check_members(members)
    device = torch.device(device) if device is not None else default_device()
    x, y = (t.to(device) for t in train)
    evals = {name: (a.to(device), b.to(device)) for name, (a, b) in (evals or {}).items()}
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= len(x):
        raise ValueError(f"batch_size must be an int in [1, {len(x)}], got {batch_size!r}")
    eval_every = eval_every or steps
    groups: dict[str, list[int]] = {}
    for k, m in enumerate(members):
        groups.setdefault(_key(m["spec"]), []).append(k)
    modules = []
    for m in members:
        seed_everything(int(m["seed"]))
        modules.append(build())
    check_stackable(modules[0])
    order = [k for ks in groups.values() for k in ks]   # members in stacked order
    built = [_Group(dict(members[ks[0]]["spec"]), [modules[k] for k in ks],
                    [float(members[k]["spec"]["lr"]) for k in ks],
                    [float(members[k]["spec"].get("weight_decay", 0.0)) for k in ks], schedule, steps, device)
             for ks in groups.values()]
    fwd = stacked_forward(modules[0])

    def stacked() -> dict[str, torch.Tensor]:
        if len(built) == 1:
            return built[0].leaves
        return {n: torch.cat([g.leaves[n] for g in built]) for n in built[0].names}

    gens = [torch.Generator().manual_seed(int(members[k]["seed"])) for k in order]
    per_epoch = len(x) // batch_size
    xe, ye = (x, y) if train_eval is None else (x[:train_eval], y[:train_eval])
    rows: list[dict[str, Any]] = []
    perm = None
    for t in range(1, steps + 1):
        j = (t - 1) % per_epoch
        if j == 0:
            perm = torch.stack([torch.randperm(len(x), generator=g) for g in gens])
        idx = perm[:, j * batch_size:(j + 1) * batch_size].to(device)
        loss = member_loss(fwd, stacked(), x, y, idx)
        for g in built:
            g.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for g in built:
            g.step()
        if t % eval_every == 0 or t == steps:
            rows += _rows(fwd, stacked(), members, order, t, {"train": (xe, ye), **evals})
    return pd.DataFrame(rows).sort_values(["member", "step"], kind="stable", ignore_index=True)


def _rows(fwd: Callable, params: dict[str, torch.Tensor], members: Sequence[Mapping[str, Any]],
          order: list[int], step: int, splits: Mapping[str, Split]) -> list[dict[str, Any]]:
    metrics = {name: evaluate_members(fwd, params, xs, ys) for name, (xs, ys) in splits.items()}
    rows = []
    for pos, k in enumerate(order):
        m = members[k]
        labels = {key: v for key, v in m.items() if key not in ("spec", "seed")}
        row = {**labels, "member": k, "seed": int(m["seed"]), "optimizer": m["spec"]["name"],
               "lr": float(m["spec"]["lr"]), "weight_decay": float(m["spec"].get("weight_decay", 0.0)),
               "step": step}
        for name, (loss, acc) in metrics.items():
            row[f"{name}_loss"], row[f"{name}_acc"] = float(loss[pos]), float(acc[pos])
        rows.append(row)
    return rows


def last(history: pd.DataFrame) -> pd.DataFrame:
    """Each member's final evaluation (one row per member)."""
    return history.sort_values("step", kind="stable").groupby("member", sort=True).tail(1).sort_values(
        "member", ignore_index=True)

