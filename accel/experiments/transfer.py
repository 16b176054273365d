"""Transfer between tasks (chapter 9): pre-train on one task, then adapt the network to another.

The sources' "weights pre-trained from another task ... fine tuning", tested as Yosinski
et al. (2014) did on ImageNet: split one data set's classes into two tasks (here the
MNIST-1D digits 0–4 and 5–9), train a network on the first, and adapt it to the second
by

* a **linear probe**: the body frozen, a new head trained;
* **fine-tuning**: everything trained, the body's layers at their own fractions of the
  head's rate (:mod:`accel.optim.layerwise`; Howard & Ruder 2018 divide the rate by 2.6
  per layer going down);
* against training **from scratch** with the same budget.

How much of the first task a fine-tuned body still knows is read with a probe: a
logistic regression on the body's features (the head's input) of the first task's
data (Kumar et al. 2022 on feature distortion).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..data import TensorDataModule
from ..data.transforms import standardize
from ..module import Classifier
from ..optim.layerwise import layer_names
from ..training import run_seeds


def task(arrays: tuple[np.ndarray, ...], classes: Sequence[int], *, train_size: int | None = None,
         batch_size: int = 100, seed: int = 0) -> TensorDataModule:
    """The samples of ``classes`` (labels renumbered 0..k−1 in that order) as a data module.

    ``arrays`` are ``(x, y, x_test, y_test)``, already preprocessed; ``train_size`` keeps
    the first samples of the task's training split (the split is already shuffled).
    """
    x, y, xt, yt = arrays
    classes = list(classes)
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"a task needs at least two distinct classes, got {classes}")
    present = set(np.unique(y).tolist())
    if not set(classes) <= present:
        raise ValueError(f"classes {sorted(set(classes) - present)} do not occur; the labels are {sorted(present)}")
    lookup = {c: i for i, c in enumerate(classes)}
    keep, keep_t = np.isin(y, classes), np.isin(yt, classes)
    xa, ya = x[keep], np.array([lookup[c] for c in y[keep]], dtype=np.int64)
    if train_size is not None:
        if not len(classes) <= train_size <= len(xa):
            raise ValueError(f"train_size must be between {len(classes)} and {len(xa)}, got {train_size}")
        xa, ya = xa[:train_size], ya[:train_size]
    yb = np.array([lookup[c] for c in yt[keep_t]], dtype=np.int64)
    return TensorDataModule(xa, ya, xt[keep_t], yb, batch_size=batch_size, seed=seed)


def task_pair(arrays: tuple[np.ndarray, ...], first: Sequence[int], second: Sequence[int], *,
              second_train_size: int | None = None, batch_size: int = 100) -> tuple[TensorDataModule, TensorDataModule]:
    """Two tasks of one data set, standardized with the whole training split's statistics,
    so that the network sees the same input scale on both."""
    x, y, xt, yt = arrays
    x, xt = standardize(x, xt)
    both = (x, y, xt, yt)
    return (task(both, first, batch_size=batch_size),
            task(both, second, train_size=second_train_size, batch_size=batch_size))


def head_name(net: nn.Module) -> str:
    """The module path of the network's last parameter-owning layer (its classifier head)."""
    names = layer_names(net)
    if not names:
        raise ValueError("the network has no trainable layers")
    return names[-1]


def features(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of the network's head for ``x`` (eval mode, no gradient): what a probe reads."""
    head = net.get_submodule(head_name(net))
    seen: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    was = net.training
    try:
        net.eval()
        with torch.no_grad():
            net(x)
    finally:
        handle.remove()
        net.train(was)
    return seen[0].flatten(1)


def probe_accuracy(net: nn.Module, data: TensorDataModule, *, C: float = 1.0, max_iter: int = 2000) -> float:
    """Test accuracy of a logistic regression fitted on the body's features of ``data``'s training set.

    Features are standardized with the training set's statistics; L-BFGS on the
    multinomial loss with an L2 penalty of ``1/C`` (scikit-learn), deterministic.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = features(net, data.x_train).cpu().numpy()
    test = features(net, data.x_test).cpu().numpy()
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    probe.fit(train, data.y_train.cpu().numpy())
    return float(probe.score(test, data.y_test.cpu().numpy()))


def new_head(net: nn.Module, num_classes: int) -> nn.Module:
    """A copy of ``net`` whose head is a freshly initialized ``nn.Linear`` with ``num_classes`` outputs."""
    net = copy.deepcopy(net)
    name = head_name(net)
    old = net.get_submodule(name)
    if not isinstance(old, nn.Linear):
        raise ValueError(f"the head {name!r} is a {type(old).__name__}, not an nn.Linear")
    parent, _, child = name.rpartition(".")
    setattr(net.get_submodule(parent) if parent else net, child, nn.Linear(old.in_features, num_classes))
    return net


@dataclass
class Arm:
    """How an arm starts on the second task and at which rates its layers train.

    ``pretrained``: the first task's weights (with a new head) or a fresh network;
    ``freeze``: only the head trains (a linear probe); ``body``: the rate of the layer
    just below the head as a factor of the head's, each lower layer ``ratio`` times
    smaller again (Howard & Ruder 2018's discriminative fine-tuning: ``body = ratio =
    1/2.6``... written here as ``body=1/2.6, ratio=2.6``).
    """

    pretrained: bool = True
    body: float = 1.0
    ratio: float = 1.0
    freeze: bool = False

    def __post_init__(self) -> None:
        if not self.body >= 0:
            raise ValueError(f"body factor must be >= 0, got {self.body!r}")
        if not self.ratio > 0:
            raise ValueError(f"ratio between consecutive layers' rates must be > 0, got {self.ratio!r}")
        if self.freeze and not self.pretrained:
            raise ValueError("a frozen body only makes sense with pre-trained weights")

    def rule(self, layers: Sequence[str]) -> dict[str, float] | None:
        """The ``layer_lr`` rule for a network with these layers (input to head); None: one rate."""
        if self.body == 1.0 and self.ratio == 1.0:
            return None
        *body, head = layers
        rule = {head: 1.0}
        for depth, layer in enumerate(reversed(body)):
            rule[layer] = self.body / self.ratio ** depth
        return rule


@dataclass
class Transfer:
    """Histories on the second task (``arm``, ``seed`` columns) and the trained networks by (arm, seed)."""

    history: pd.DataFrame
    nets: dict[tuple[str, int], nn.Module] = field(default_factory=dict)


def adapt(pretrained: Mapping[int, nn.Module], build: Callable[[], nn.Module], data: TensorDataModule,
          arms: Mapping[str, Arm], epochs: int, optimizer: dict[str, Any],
          schedule: dict[str, Any] | None = None) -> Transfer:
    """Train every arm on ``data`` for ``epochs``, one run per seed of ``pretrained`` (``{seed: net}``).

    A pre-trained arm of seed ``s`` starts from ``pretrained[s]`` with a new head (the same
    initial head for every arm of that seed); a scratch arm from ``build()`` under seed
    ``s``. Every arm has the same optimizer, schedule and number of updates; only the
    body's rate factor (``layer_lr``) and freezing differ.
    """
    histories, nets = [], {}
    classes = data.num_classes
    for name, arm in arms.items():
        for s, source in pretrained.items():
            def make(arm: Arm = arm, source: nn.Module = source) -> Classifier:
                net = new_head(source, classes) if arm.pretrained else build()
                spec = dict(optimizer)
                if arm.freeze:
                    head = head_name(net)
                    for pname, p in net.named_parameters():
                        p.requires_grad_(pname.startswith(head + "."))
                elif (rule := arm.rule(layer_names(net))) is not None:
                    spec["layer_lr"] = rule
                return Classifier(net, spec, schedule)
            runs = run_seeds(make, data, epochs, [s], arm=name)
            histories.append(runs.history)
            nets[(name, s)] = runs.nets[s]
    return Transfer(pd.concat(histories, ignore_index=True), nets)


def pretrain(build: Callable[[], nn.Module], data: TensorDataModule, epochs: int, seeds: Sequence[int],
             optimizer: dict[str, Any], schedule: dict[str, Any] | None = None) -> tuple[pd.DataFrame, dict[int, nn.Module]]:
    """Train ``build()`` on the first task, one run per seed: histories and trained networks."""
    runs = run_seeds(lambda: Classifier(build(), optimizer, schedule), data, epochs, seeds)
    return runs.history, runs.nets


def steps_to(history: pd.DataFrame, metric: str, target: float, *, by: Sequence[str] = ("arm", "seed"),
             higher: bool = True) -> pd.DataFrame:
    """Per run: the optimizer steps until ``metric`` first reached ``target`` (measured once per epoch).

    A run that never reached it gets its total steps and ``censored`` True (a lower bound).
    """
    rows = []
    for key, run in history.sort_values("epoch", kind="stable").groupby(list(by), sort=False):
        values = run[metric].to_numpy(dtype=float)
        hit = np.flatnonzero(values >= target if higher else values <= target)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "steps": int(run.step.iloc[hit[0]] if len(hit) else run.step.iloc[-1]),
                     "censored": not len(hit)})
    return pd.DataFrame(rows)


__all__ = ["Arm", "Transfer", "adapt", "features", "head_name", "new_head", "pretrain", "probe_accuracy",
           "steps_to", "task", "task_pair"]
