"""Seeds of several optimizer-and-schedule arms trained as one vectorized model, with branching.

The recent-methods chapter compares arms that :func:`accel.experiments.members.train_members`
cannot hold together: Schedule-Free AdamW (whose step is not the learning rate times a
direction independent of it, so it cannot share an optimizer run at lr 1 with members of
other rates), schedules of different lengths, and warmup-stable-decay cooldowns *branched*
off one constant-rate run (Hägele et al. 2024). Here each :class:`Arm` is one optimizer
instance, with its own rate and schedule, over its seeds' parameters stacked along a
first dimension; every arm's members share one forward pass (``vmap`` over
``functional_call``). Stacking seeds of one arm is exact for rules whose state and step are
per scalar given the arm's hyperparameters: Adam, AdamW and Schedule-Free AdamW (whose only
non-elementwise quantities, the averaging weight and the warm-up factor, depend on the step
count and the rate alone, both shared by the arm).

Member (arm, seed) starts from the weights of ``build()`` after ``seed_everything(seed)`` and
draws a fresh permutation per epoch from a generator seeded with ``seed`` (the last incomplete
batch dropped), as :func:`accel.experiments.single_run.train_one` does, so arms with the same
seed are paired with each other and with ``train_one`` runs. An arm with ``parent`` starts at
step ``branch_at`` as a copy of that arm (weights, optimizer state, data order): a cooldown
branched off a constant run is then the same run as a standalone warmup-stable-decay run of
its length, yet costs only its cooldown's updates (``cost`` counts the updates each arm computed).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import pandas as pd
import torch
from torch import nn

from ..optim import make_optimizer
from ..schedules import lr_factor
from ..seeding import seed_everything
from .members import Split, check_stackable, evaluate_members, member_loss, stacked_forward


@dataclass
class Arm:
    """One optimizer spec with a schedule over ``length`` updates, for each of ``seeds``.

    ``schedule`` is an :mod:`accel.schedules` spec over ``length`` (None: constant);
    ``evals``: the update counts after which the arm is evaluated (its last update always is);
    ``parent``/``branch_at``: start as a copy of arm ``parent`` after its ``branch_at`` updates.
    """
    label: str
    spec: dict[str, Any]
    seeds: list[int]
    length: int
    schedule: dict[str, Any] | None = None
    evals: Sequence[int] = ()
    parent: str | None = None
    branch_at: int = 0
    labels: dict[str, Any] = field(default_factory=dict)


class _Stack(nn.Module):
    """Stacked parameters as a module, so :func:`accel.optim.make_optimizer` groups them by member shape."""
    stacked_dims = 1

    def __init__(self, tensors: Sequence[torch.Tensor]):
        super().__init__()
        self.tensors = nn.ParameterList([nn.Parameter(t) for t in tensors])


class _Running:
    def __init__(self, arm: Arm, stack: _Stack, optimizer: torch.optim.Optimizer, gens: list[torch.Generator],
                 perm: torch.Tensor | None, done: int):
        self.arm, self.stack, self.optimizer, self.gens, self.perm, self.done = arm, stack, optimizer, gens, perm, done
        self.factor = lr_factor(arm.schedule, arm.length)
        self.base = [g["lr"] for g in optimizer.param_groups]
        self.schedule_free = callable(getattr(optimizer, "eval", None))
        if self.schedule_free:
            optimizer.train()

    def set_lr(self) -> None:
        f = self.factor(self.done)
        for g, lr in zip(self.optimizer.param_groups, self.base):
            g["lr"] = lr * f


def _check_arms(arms: Sequence[Arm]) -> None:
    labels = [a.label for a in arms]
    if len(set(labels)) != len(labels):
        raise ValueError(f"arm labels must be distinct, got {labels}")
    by = {a.label: a for a in arms}
    for a in arms:
        if not isinstance(a.length, int) or a.length < 1:
            raise ValueError(f"arm {a.label!r}: length must be a positive int, got {a.length!r}")
        if not a.seeds:
            raise ValueError(f"arm {a.label!r} has no seeds")
        if a.parent is not None:
            p = by.get(a.parent)
            if p is None:
                raise ValueError(f"arm {a.label!r}: unknown parent {a.parent!r}; arms: {labels}")
            if p.seeds != a.seeds or not 0 < a.branch_at <= p.length or a.branch_at >= a.length:
                raise ValueError(f"arm {a.label!r} must share its parent's seeds and branch at a step in "
                                 f"(0, {min(p.length, a.length - 1)}], got {a.branch_at}")
            if p.spec != a.spec:
                raise ValueError(f"arm {a.label!r} must continue its parent's optimizer spec")


def train_arms(build: Callable[[], nn.Module], train: Split, arms: Sequence[Arm], *, batch_size: int,
               evals: Mapping[str, Split] | None = None, train_eval: int | None = 1000
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train every arm; return its evaluation rows and the updates each arm computed.

    Rows: the arm's ``labels``, ``arm``, ``seed``, ``optimizer``, ``lr``, ``step`` (updates
    applied), ``train_loss``/``train_acc`` on the first ``train_eval`` training samples and
    ``<name>_loss``/``<name>_acc`` per split of ``evals``. Schedule-Free arms are evaluated
    at their averaged weights (``optimizer.eval()``), then switched back. Cost rows: ``arm``,
    ``seeds``, ``updates`` (per seed: ``length − branch_at``), ``member_updates``.
    """
    _check_arms(arms)
    x, y = train
    if not isinstance(batch_size, int) or not 1 <= batch_size <= len(x):
        raise ValueError(f"batch_size must be an int in [1, {len(x)}], got {batch_size!r}")
    xe, ye = (x, y) if train_eval is None else (x[:train_eval], y[:train_eval])
    splits = {"train": (xe, ye), **(evals or {})}
    template = build()
    check_stackable(template, fallback="one run per seed (accel.experiments.single_run.train_one)")
    names = [n for n, _ in template.named_parameters()]
    fwd = stacked_forward(template)
    per_epoch = len(x) // batch_size
    running: list[_Running] = []
    for arm in arms:
        if arm.parent is None:
            weights = []
            for s in arm.seeds:
                seed_everything(int(s))
                weights.append(dict(build().named_parameters()))
            stack = _Stack([torch.stack([w[n].detach() for w in weights]) for n in names])
            gens = [torch.Generator().manual_seed(int(s)) for s in arm.seeds]
            running.append(_Running(arm, stack, make_optimizer(stack, arm.spec), gens, None, 0))
    pending = [a for a in arms if a.parent is not None]
    rows: list[dict[str, Any]] = []
    t = 0
    while running:
        j = t % per_epoch
        for r in running:
            if j == 0:
                r.perm = torch.stack([torch.randperm(len(x), generator=g) for g in r.gens])
        idx = torch.cat([r.perm[:, j * batch_size:(j + 1) * batch_size] for r in running])
        params = {n: torch.cat([r.stack.tensors[i] for r in running]) for i, n in enumerate(names)}
        loss = member_loss(fwd, params, x, y, idx)
        for r in running:
            r.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for r in running:
            r.set_lr()
            r.optimizer.step()
            r.done += 1
        t += 1
        for r in running:
            if r.done in r.arm.evals or r.done == r.arm.length:
                rows += _rows(fwd, names, r, splits)
        for a in [a for a in pending if a.branch_at == t]:
            parent = next(r for r in running if r.arm.label == a.parent)
            running.append(_branch(parent, a))
            pending.remove(a)
        running = [r for r in running if r.done < r.arm.length]
    cost = pd.DataFrame([{"arm": a.label, "seeds": len(a.seeds), "updates": a.length - a.branch_at,
                          "member_updates": len(a.seeds) * (a.length - a.branch_at)} for a in arms])
    return pd.DataFrame(rows), cost


def _branch(parent: _Running, arm: Arm) -> _Running:
    """A copy of ``parent``'s weights, optimizer state and data order, continuing as ``arm``."""
    stack = _Stack([p.detach().clone() for p in parent.stack.tensors])
    optimizer = make_optimizer(stack, arm.spec)
    state = copy.deepcopy(parent.optimizer.state_dict())
    for g, lr in zip(state["param_groups"], parent.base):
        g["lr"] = lr   # the parent's base rates; the branch's own schedule scales them
    optimizer.load_state_dict(state)
    gens = []
    for g in parent.gens:
        clone = torch.Generator()
        clone.set_state(g.get_state())
        gens.append(clone)
    return _Running(arm, stack, optimizer, gens, parent.perm, parent.done)


def _rows(fwd: Callable, names: list[str], r: _Running, splits: Mapping[str, Split]) -> list[dict[str, Any]]:
    if r.schedule_free:
        r.optimizer.eval()
    params = {n: p.detach() for n, p in zip(names, r.stack.tensors)}
    metrics = {name: evaluate_members(fwd, params, xs, ys) for name, (xs, ys) in splits.items()}
    if r.schedule_free:
        r.optimizer.train()
    out = []
    for m, s in enumerate(r.arm.seeds):
        row = {**r.arm.labels, "arm": r.arm.label, "seed": int(s), "optimizer": r.arm.spec["name"],
               "lr": float(r.arm.spec["lr"]), "step": r.done}
        for name, (loss, acc) in metrics.items():
            row[f"{name}_loss"], row[f"{name}_acc"] = float(loss[m]), float(acc[m])
        out.append(row)
    return out
