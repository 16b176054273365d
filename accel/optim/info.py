"""One row per optimizer: where its class comes from and what the rest of `accel` must know.

Every fact about an optimizer lives here once (the factory, the module's backward pass,
the tuning grids and the seed ensembles all read this table):

* ``cls``: the class, or a zero-argument function returning it (lazy imports);
* ``presets``: arguments fixed by the name (``momentum`` is SGD with momentum 0.9);
* ``create_graph``: the update needs Hessian-vector products, so the loss is
  differentiated with ``create_graph=True`` (AdaHessian's Hutchinson estimate);
* ``group_options``: options the class reads from its param groups rather than naming
  in its signature (Lamb's ``adam_debias``);
* ``lr_centre``: the conventional learning rate around which a tuning grid is centred
  (a convention, and part of any ranking built on it); ``momenta``: the momentum
  values a tuning grid tries, for the optimizers with that knob;
* ``adaptation_off``: for a layer-wise rule, the param-group option that switches its
  trust ratio off for that group (Lamb's ``adam=True``: a trust ratio of 1), which
  ``make_optimizer(..., {"exclude_from_adaptation": True})`` sets for biases and norm
  parameters, as You et al. 2020 do for BERT;
* ``elementwise``: the update of each scalar depends only on that scalar's own history,
  so K stacked copies of a model can share one optimizer (layer-wise or matrix-wise
  rules, LARS, LAMB, Shampoo, SOAP, Muon, and AdaHessian's graph, cannot);
* ``takes_model``: the class is built from the model itself, not from parameter groups
  (Adam-mini partitions the parameters by their names), so the factory's groups do not
  apply: the class decides which tensors are decayed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch


def _pytorch_optimizer(name: str) -> Callable[[], type]:
    def load() -> type:
        import pytorch_optimizer
        return getattr(pytorch_optimizer, name)
    return load


def _schedulefree(name: str) -> Callable[[], type]:
    def load() -> type:
        import schedulefree
        return getattr(schedulefree, name)
    return load


@dataclass(frozen=True)
class OptimizerInfo:
    cls: type | Callable[[], type]
    presets: dict[str, Any] = field(default_factory=dict)
    create_graph: bool = False
    group_options: tuple[str, ...] = ()
    lr_centre: float | None = None
    momenta: tuple[float, ...] = ()
    elementwise: bool = True
    source: str = ""
    adaptation_off: str | None = None
    takes_model: bool = False

    def resolve(self) -> type:
        return self.cls if isinstance(self.cls, type) else self.cls()


OPTIMIZERS: dict[str, OptimizerInfo] = {
    "sgd": OptimizerInfo(torch.optim.SGD, lr_centre=0.1),
    "momentum": OptimizerInfo(torch.optim.SGD, {"momentum": 0.9}, lr_centre=0.03, momenta=(0.9, 0.98)),
    "nesterov": OptimizerInfo(torch.optim.SGD, {"momentum": 0.9, "nesterov": True}, lr_centre=0.03,
                              momenta=(0.9, 0.98)),
    "adagrad": OptimizerInfo(torch.optim.Adagrad, lr_centre=0.03),
    "rmsprop": OptimizerInfo(torch.optim.RMSprop, lr_centre=1e-3),
    "adadelta": OptimizerInfo(torch.optim.Adadelta, lr_centre=1.0),
    "adam": OptimizerInfo(torch.optim.Adam, lr_centre=1e-3),
    "adamw": OptimizerInfo(torch.optim.AdamW, lr_centre=1e-3),
    "radam": OptimizerInfo(torch.optim.RAdam, lr_centre=1e-3),
    "nadam": OptimizerInfo(torch.optim.NAdam, lr_centre=2e-3),
    "lars": OptimizerInfo(_pytorch_optimizer("LARS"), lr_centre=0.1, elementwise=False,
                          source="You et al. 2017"),
    # adam_debias=True divides by (1 - beta1^t) inside the Adam ratio only: You et al. 2020, Alg. 2.
    "lamb": OptimizerInfo(_pytorch_optimizer("Lamb"), group_options=("adam_debias",), lr_centre=3e-3,
                          elementwise=False, source="You et al. 2020", adaptation_off="adam"),
    # Beyond first-order adaptivity: approximations of Newton's method.
    "adahessian": OptimizerInfo(_pytorch_optimizer("AdaHessian"), create_graph=True, elementwise=False,
                                source="Yao et al. 2021"),
    "shampoo": OptimizerInfo(_pytorch_optimizer("Shampoo"), elementwise=False, source="Gupta et al. 2018"),
    "soap": OptimizerInfo(_pytorch_optimizer("SOAP"), elementwise=False, source="Vyas et al. 2024"),
    "muon": OptimizerInfo(_pytorch_optimizer("Muon"), elementwise=False, source="Jordan et al. 2024"),
    # Adam-mini (Zhang et al. 2025): one second moment per block (per head for attention's query and
    # key, per tensor for the rest in this implementation), so the state is about half of AdamW's.
    # Its weight decay defaults to 0.1 in the class; the table uses AdamW's 0.01 for comparisons.
    "adam_mini": OptimizerInfo(_pytorch_optimizer("AdamMini"), {"weight_decay": 0.01}, lr_centre=1e-3,
                               elementwise=False, source="Zhang et al. 2025", takes_model=True),
    # Schedule-Free AdamW (Defazio et al. 2024): its step is not lr × a direction independent of lr
    # (the averaging weights depend on lr), so it is not marked elementwise for lr-scaled stacking;
    # it needs optimizer.train()/.eval() around evaluation (accel.callbacks.ScheduleFreeMode).
    "adamw_schedulefree": OptimizerInfo(_schedulefree("AdamWScheduleFree"), lr_centre=3e-3, elementwise=False,
                                        source="Defazio et al. 2024"),
}


def check_optimizer(name: str) -> OptimizerInfo:
    """The table's row for ``name``; an unknown name is an error listing the valid ones."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def needs_create_graph(name: str | None) -> bool:
    """Whether optimizer ``name``'s backward pass must keep the graph (AdaHessian)."""
    return name in OPTIMIZERS and OPTIMIZERS[name].create_graph
