"""Seeds trained together: K copies of one small model stacked into one model (``torch.func``).

A chapter's verdict needs several seeds of a small network, and a small network's step is
mostly fixed per-step cost (Python, Lightning's hooks, kernel launches), not arithmetic.
Stacking the K members' parameters along a new first dimension
(:func:`torch.func.stack_module_state`) and running one member's forward under
:func:`torch.vmap` (:func:`torch.func.functional_call`) pays that cost once for all K.
A plain MLP (``nn.Linear`` and elementwise activations in an ``nn.Sequential``) skips
vmap's own per-call cost and runs the same batched matrix products directly, bit for bit.

Member ``k`` is exactly a separate run with seed ``k``, up to float rounding: its initial
weights come from ``build()`` after seeding with ``k``, its batches from the loader a
separate run would use (:class:`accel.data.loader.StackedBatches`), its BatchNorm
statistics are its own (buffers are stacked too), and its gradient is that of its own
loss: the training loss is the *sum* of the members' losses, and no member's parameters
enter another's. That last point holds for the optimizer only if its update of each
scalar depends on that scalar's history alone (``elementwise`` in
:data:`accel.optim.info.OPTIMIZERS`); anything that takes a norm or a matrix function of a
whole tensor, or a global gradient norm, would mix the members, and is refused.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn
from torch.func import functional_call, stack_module_state

from .data.loader import StackedBatches
from .optim.info import OPTIMIZERS

# Why each optimizer that is not elementwise cannot share one update over stacked members.
COUPLED = {
    "lars": "LARS scales each tensor's step by its weight norm over its gradient norm (You et al. 2017)",
    "lamb": "LAMB scales each tensor's Adam step by a trust ratio of norms (You et al. 2020)",
    "shampoo": "Shampoo preconditions each tensor with matrix roots of its row and column statistics "
               "(Gupta et al. 2018)",
    "soap": "SOAP runs Adam in the eigenbasis of each tensor's Shampoo statistics (Vyas et al. 2024)",
    "adam_mini": "Adam-mini keeps one second moment per block of parameters, the mean of the squared "
                 "gradients over the block (Zhang et al. 2025)",
    "muon": "Muon orthogonalizes each weight matrix's update as a whole (Jordan et al. 2024)",
    "adahessian": "AdaHessian needs second derivatives (create_graph) and averages its Hessian "
                  "estimate over each kernel (Yao et al. 2021)",
}

# Layers that act on each scalar alone: applied to a (K, B, h) tensor they do what vmap
# would do member by member, bit for bit (no state, no randomness).
_ELEMENTWISE = (nn.Identity, nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.ELU, nn.SiLU)


def check_elementwise(name: str | None) -> None:
    """Refuse an optimizer whose update of one scalar depends on other scalars of its tensor."""
    info = OPTIMIZERS.get(name)  # type: ignore[arg-type]
    if info is None or (info.elementwise and not info.create_graph):
        return
    why = COUPLED.get(name, f"{name}'s update of a tensor depends on the whole tensor")  # type: ignore[arg-type]
    ok = ", ".join(n for n, i in OPTIMIZERS.items() if i.elementwise and not i.create_graph)
    raise ValueError(f"optimizer {name!r} cannot train a stacked seed ensemble: {why}, so on a tensor "
                     f"stacking K members it would mix them. Train these seeds one at a time "
                     f"(ensemble=False), or use an elementwise optimizer: {ok}")


def check_clipping(value: float | None, algorithm: Any) -> None:
    """Global-norm clipping scales every gradient by one norm over all K members: refused."""
    if value and str(getattr(algorithm, "value", algorithm) or "norm").lower() != "value":
        raise ValueError("gradient clipping by norm cannot train a stacked seed ensemble: its norm is "
                         "taken over all members' gradients at once, so one member's large gradient "
                         "would shrink the others' steps. Clip by value "
                         "(gradient_clip_algorithm='value', elementwise) or train the seeds one at a "
                         "time (ensemble=False)")


def _key(name: str) -> str:
    return name.replace(".", "__")


class StackedEnsemble(nn.Module):
    """K networks of one architecture as one module whose parameters are stacked: ``(K, *shape)``.

    ``forward(x)`` gives every member the same input (evaluation); ``forward(x, stacked=True)``
    gives member ``k`` the slice ``x[k]`` (training, each member its own batch). Output:
    ``(K, B, ...)``. ``stacked_dims = 1`` tells :mod:`accel.optim` to decide parameter
    groups on one member's shapes (a stacked bias is still a bias). Random layers
    (dropout) draw independently per member (``randomness="different"``), so they are
    not those of a separate run.
    """

    stacked_dims = 1

    def __init__(self, nets: Sequence[nn.Module]):
        super().__init__()
        nets = list(nets)
        if len(nets) < 1:
            raise ValueError("a stacked ensemble needs at least one network")
        _check_same_architecture(nets)
        params, buffers = stack_module_state(nets)
        self.num_members = len(nets)
        self._param_names = list(params)
        self._buffer_names = list(buffers)
        self.stacked_params = nn.ParameterDict({_key(n): nn.Parameter(p.detach()) for n, p in params.items()})
        self.stacked_buffers = nn.Module()
        for n, b in buffers.items():
            self.stacked_buffers.register_buffer(_key(n), b)
        # One member's module, without storage, that functional_call runs with a member's
        # tensors. Not a submodule: its (meta) parameters are not the ensemble's.
        object.__setattr__(self, "_base", copy.deepcopy(nets[0]).to("meta"))
        self._direct = _direct_plan(nets[0])

    def _tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        params = {n: self.stacked_params[_key(n)] for n in self._param_names}
        buffers = {n: getattr(self.stacked_buffers, _key(n)) for n in self._buffer_names}
        return params, buffers

    def _member_forward(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                        x: torch.Tensor) -> torch.Tensor:
        return functional_call(self._base, (params, buffers), (x,))

    def forward(self, x: torch.Tensor, *, stacked: bool = False) -> torch.Tensor:
        # The member module follows this module's mode at every call: Lightning restores
        # modes after validation by setting `training` on named_modules(), which it is not.
        if self._base.training != self.training:
            self._base.train(self.training)
        params, buffers = self._tensors()
        if stacked and x.shape[0] != self.num_members:
            raise ValueError(f"a stacked batch needs its first dimension to be the {self.num_members} "
                             f"members, got shape {tuple(x.shape)}")
        if self._direct is not None:
            return self._direct_forward(params, x, stacked)
        run = torch.vmap(self._member_forward, in_dims=(0, 0, 0 if stacked else None), randomness="different")
        try:
            return run(params, buffers, x)
        except RuntimeError as e:  # an op vmap cannot batch (data-dependent control flow, .item())
            if "vmap" not in str(e):
                raise
            raise ValueError(f"this model cannot be trained as a stacked seed ensemble: {e}. "
                             f"Train the seeds one at a time (ensemble=False)") from e

    def _direct_forward(self, params: dict[str, torch.Tensor], x: torch.Tensor, stacked: bool) -> torch.Tensor:
        """An MLP's stacked forward as batched matrix products: the same operations vmap
        runs for ``nn.Linear`` (a batched matmul, then the bias added), bit for bit, without
        vmap's and functional_call's Python cost per call (about a fifth of a small MLP's step)."""
        h = x
        for kind, name in self._direct:
            if kind == "flatten":
                h = h.flatten(2) if stacked else h.flatten(1)
            elif kind == "linear":
                h = torch.matmul(h, params[f"{name}.weight"].transpose(-1, -2))
                if f"{name}.bias" in params:
                    h = h + params[f"{name}.bias"].unsqueeze(-2)
            else:
                h = self._base.get_submodule(name)(h)
        return h

    def member_tensors(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s parameters and buffers by their names in one network."""
        if not 0 <= k < self.num_members:
            raise ValueError(f"member must be in [0, {self.num_members}), got {k}")
        params, buffers = self._tensors()
        return {n: t[k] for n, t in {**params, **buffers}.items()}

    @torch.no_grad()
    def copy_member_into(self, k: int, net: nn.Module) -> nn.Module:
        """Write member ``k``'s trained tensors into ``net`` (a network of the same architecture)."""
        tensors = self.member_tensors(k)
        for name, t in [*net.named_parameters(), *net.named_buffers()]:
            t.copy_(tensors[name])
        return net

    def member(self, k: int) -> nn.Module:
        """A separate network holding member ``k``'s tensors (for :func:`accel.models.norm.predict`)."""
        device = next(iter(self.stacked_params.values())).device
        net = copy.deepcopy(self._base).to_empty(device=device)
        return self.copy_member_into(k, net).train(self.training)


def _direct_plan(net: nn.Module) -> list[tuple[str, str]] | None:
    """The layers of an ``nn.Sequential`` MLP (optional leading ``nn.Flatten``, then
    ``nn.Linear`` and elementwise activations only), or None for anything else (vmap then)."""
    if not isinstance(net, nn.Sequential) or type(net).forward is not nn.Sequential.forward:
        return None
    plan: list[tuple[str, str]] = []
    for i, (name, layer) in enumerate(net.named_children()):
        if type(layer) is nn.Flatten and i == 0 and layer.start_dim == 1 and layer.end_dim == -1:
            plan.append(("flatten", name))
            continue
        if type(layer) is nn.Linear:
            plan.append(("linear", name))
        elif type(layer) in _ELEMENTWISE:
            plan.append(("elementwise", name))
        else:
            return None
    return plan if any(kind == "linear" for kind, _ in plan) else None


def _check_same_architecture(nets: Sequence[nn.Module]) -> None:
    def shapes(net: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        return [(n, tuple(t.shape), t.dtype) for n, t in [*net.named_parameters(), *net.named_buffers()]]
    first = shapes(nets[0])
    for i, net in enumerate(nets[1:], 1):
        if type(net) is not type(nets[0]) or shapes(net) != first:
            raise ValueError(f"network {i} differs from network 0 in type or tensor shapes; a stacked "
                             f"ensemble needs K copies of one architecture")


def stack_classifiers(modules: Sequence[pl.LightningModule]) -> pl.LightningModule:
    """One :class:`accel.module.Classifier` training the nets of ``modules`` (one per seed) together.

    Every module must be a ``Classifier`` with the same optimizer, schedule, step count and
    loss; the optimizer must be elementwise (:func:`check_elementwise`). Raises ValueError
    saying why otherwise, before any training.
    """
    from .module import Classifier  # the module imports this one for StackedEnsemble
    modules = list(modules)
    if not modules or not all(isinstance(m, Classifier) for m in modules):
        kinds = sorted({type(m).__name__ for m in modules})
        raise ValueError(f"ensemble=True stacks accel.module.Classifier modules; build() returned {kinds}")
    first = modules[0]
    for m in modules[1:]:
        if (m.optimizer_spec, m.schedule_spec, m.total_steps, m.loss_fn) != \
                (first.optimizer_spec, first.schedule_spec, first.total_steps, first.loss_fn):
            raise ValueError("ensemble=True needs every seed's module to have the same optimizer, "
                             "schedule, total_steps and loss")
    check_elementwise(first.optimizer_spec.get("name"))
    return Classifier(StackedEnsemble([m.net for m in modules]), first.optimizer_spec, first.schedule_spec,
                      first.total_steps, loss=first.hparams.get("loss", "cross_entropy"))


class MemberData(pl.LightningDataModule):
    """A data module's training set served to K members, each in its own seed's order.

    Training batches are stacked (:class:`StackedBatches`): loader ``k`` is
    ``datamodule.train_dataloader()`` with ``datamodule.seed = seeds[k]``, the loader a
    separate run with that seed uses. Evaluation batches are the data module's, shared by
    all members. Other attributes (``set_batch_size``, ``x_train``, ...) are the data module's.
    """

    def __init__(self, datamodule: pl.LightningDataModule, seeds: Sequence[int]):
        super().__init__()
        if not hasattr(datamodule, "seed"):
            raise ValueError("ensemble=True needs a data module with a `seed` attribute that sets its "
                             "shuffling (as accel.data.TensorDataModule has)")
        self.inner = datamodule
        self.seeds = list(seeds)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _attach(self) -> None:
        self.inner.trainer = self.trainer

    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str) -> None:
        self.inner.setup(stage)

    def train_dataloader(self) -> StackedBatches:
        self._attach()
        loaders = []
        for seed in self.seeds:
            self.inner.seed = seed
            loaders.append(self.inner.train_dataloader())
        return StackedBatches(loaders)

    def val_dataloader(self) -> Any:
        self._attach()
        return self.inner.val_dataloader()

    def test_dataloader(self) -> Any:
        self._attach()
        return self.inner.test_dataloader()


class MemberHistory(pl.Callback):
    """Per epoch, one row per member: what :class:`accel.callbacks.History` records for one run.

    Metrics the module keeps per member (``Classifier.member_metrics``) give each member its
    own value; any other logged metric is copied to every member's row.
    """

    def __init__(self, seeds: Sequence[int]):
        self.seeds = list(seeds)
        self.rows: list[list[dict[str, Any]]] = [[] for _ in self.seeds]

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        per_member = {k: v.detach().cpu().tolist() for k, v in getattr(pl_module, "member_metrics", {}).items()}
        for i, rows in enumerate(self.rows):
            row: dict[str, Any] = {"epoch": trainer.current_epoch + 1, "step": trainer.global_step}
            for key, value in trainer.callback_metrics.items():
                v = float(per_member[key][i]) if key in per_member else float(value)
                row[key] = v if math.isfinite(v) else float("nan")
            rows.append(row)

    def frame(self) -> pd.DataFrame:
        """One row per member and epoch, ordered by member then epoch, with a ``seed`` column."""
        frames = [pd.DataFrame(rows).assign(seed=seed) for seed, rows in zip(self.seeds, self.rows)]
        return pd.concat(frames, ignore_index=True)
