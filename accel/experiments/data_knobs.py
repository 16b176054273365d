"""Chapter 8's experiments: the data-side knobs, each a set of arms run by :mod:`.knob_runs`.

* :func:`mnist1d_variants`: MNIST-1D's standard split prepared several ways
  (:func:`accel.data.transforms.preprocess`) and with flipped labels
  (:func:`accel.data.noise.flip_labels`), as :class:`~.knob_runs.Variant` s;
* :func:`tuned_speed`: steps to a target with each arm at its own tuned learning rate
  (:mod:`.knob_tuning`), finals on fresh seeds;
* :func:`same_sign` : how often a unit's incoming weight-gradient row has one sign
  (LeCun et al. 1998, §4.4), per sample and for a minibatch;
* :func:`plateau`, :func:`log_slope`: the converged-check and the per-seed slope the claims use.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from ..data import sources, transforms
from ..data.noise import flip_labels
from ..models import build_model
from .knob_runs import Arm, Variant, hit, train_arms
from .knob_tuning import best_rates, speed_score, tune_arms


def mnist1d_variants(preprocessing: Sequence[str] = ("standardized",), *, offset: float = 1.0,
                     noise: float = 0.0, noise_seed: int = 0, num_samples: int = 5000
                     ) -> dict[str, Variant]:
    """MNIST-1D (4,000 train / 1,000 test by default) as named variants.

    One variant per preprocessing name (:data:`accel.data.transforms.PREPROCESSING`), and,
    when ``noise`` > 0, ``"noisy"``: the standardized inputs with that fraction of training
    labels flipped to another class (the test labels stay clean).
    """
    x, y, xt, yt = sources.mnist1d(num_samples)
    out = {}
    for name in preprocessing:
        a, b = transforms.preprocess(name, x, xt, offset=offset)
        out[name] = Variant.of(a, y, b, yt)
    if noise > 0:
        a, b = transforms.standardize(x, xt)
        noisy, _ = flip_labels(y, noise, 10, seed=noise_seed)
        out["noisy"] = Variant.of(a, noisy, b, yt)
    return out


def tuned_speed(arms: Sequence[Arm], data: Mapping[str, Variant], seeds: Sequence[int], *, tune_seed: int,
                target: tuple[str, float], max_steps: int, batch_size: int, centres: Mapping[str, float],
                eval_every: int = 25, n: int = 4, max_rounds: int = 3, train_eval: int = 1000,
                keep_states: bool = False) -> dict[str, Any]:
    """Each arm's learning rate tuned for speed to ``target`` on ``tune_seed``, then trained on ``seeds``.

    The tuning score is :func:`~.knob_tuning.speed_score` (fewest steps to the target, ties
    broken by the lower final loss); every run stops when all its members have reached the
    target, or at ``max_steps``. Returns ``trials`` (arm, lr, score, round), ``best`` (arm,
    lr, interior, ...), ``history`` (the finals' evaluations) and ``steps`` (per arm and
    seed: steps to target, ``reached``; a member that never reached it is censored at
    ``max_steps + 1``); with ``keep_states``, also ``states``: each final member's parameters
    when its run stopped, by ``(arm name, seed)``.
    """
    if tune_seed in seeds:
        raise ValueError(f"the tuning seed {tune_seed} must not be one of the final seeds {list(seeds)}")
    metric, value = target

    def run(trial_arms: list[Arm]) -> list[float]:
        # arms of one call need distinct names: suffix each trial's rate
        named = [Arm(f"{a.name}@{a.optimizer['lr']:.6g}", a.model, a.optimizer, a.data, a.order, a.augment,
                     a.labels) for a in trial_arms]
        h = train_arms(named, [tune_seed], data, steps=max_steps, batch_size=batch_size, eval_every=eval_every,
                       test_every=max_steps, train_eval=train_eval, target=target, stop_at_target=True)
        s = steps_to_target(h, value, metric).set_index("arm")
        final = h.groupby("arm").train_loss.last()
        return [speed_score(s.loc[a.name, "steps"], final[a.name], max_steps) for a in named]

    trials = tune_arms(run, arms, centres=centres, n=n, max_rounds=max_rounds)
    best = best_rates(trials)
    rate = dict(zip(best.arm, best.lr))
    finals = [a.with_lr(rate[a.name]) for a in arms]
    out = train_arms(finals, seeds, data, steps=max_steps, batch_size=batch_size, eval_every=eval_every,
                     test_every=max_steps, train_eval=train_eval, target=target, stop_at_target=True,
                     keep_states=keep_states)
    history, states = out if keep_states else (out, None)
    result = {"trials": trials, "best": best, "history": history, "steps": steps_to_target(history, value, metric)}
    if keep_states:
        result["states"] = states
    return result


def steps_to_target(history: pd.DataFrame, target: float, metric: str = "train_loss",
                    by: Sequence[str] = ("arm", "seed"), interpolate: bool = True) -> pd.DataFrame:
    """Per member: the step at which ``metric`` first reached ``target`` (:func:`hit`).

    With ``interpolate``, the crossing is placed by linear interpolation between the last
    evaluation before it and the first at or past it (evaluations every 25 steps would
    otherwise tie runs that differ by a few steps); a target met at the first evaluation
    counts that evaluation's step. A member that never got there gets its last step + 1 and
    ``reached = False``: a lower bound, to be treated as censored.
    """
    hit(metric, 0.0, target)
    rows = []
    for key, h in history.groupby(list(by), sort=False):
        last_step = float(h.step.max())
        h = h.dropna(subset=[metric]).sort_values("step")   # a diverged member has no value: never reached
        done = np.array([hit(metric, v, target) for v in h[metric]], dtype=bool)
        reached = bool(done.any())
        if reached:
            i = int(np.argmax(done))
            steps = float(h.step.iloc[i])
            if interpolate and i > 0:
                (t0, t1), (v0, v1) = h.step.iloc[i - 1:i + 1].to_numpy(float), h[metric].iloc[i - 1:i + 1].to_numpy(float)
                if v0 != v1:
                    steps = float(t0 + (t1 - t0) * (v0 - target) / (v0 - v1))
        else:
            steps = last_step + 1
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "steps": steps,
                     "reached": reached})
    return pd.DataFrame(rows)


def per_seed(table: pd.DataFrame, column: str, arm: str, seeds: Sequence[int] | None = None) -> np.ndarray:
    """``column`` for ``arm`` in seed order (one row per seed expected)."""
    rows = table[table.arm == arm].sort_values("seed")
    if seeds is not None:
        rows = rows.set_index("seed").loc[list(seeds)].reset_index()
    return rows[column].to_numpy(dtype=float)


def final_rows(history: pd.DataFrame) -> pd.DataFrame:
    """Each member's last evaluation."""
    return history.sort_values("step", kind="stable").groupby("member").tail(1).sort_values(
        ["arm", "seed"], kind="stable", ignore_index=True)


def plateau(history: pd.DataFrame, metric: str = "test_acc", window: float = 0.25) -> pd.Series:
    """Per arm: the mean over seeds of ``metric``'s change between the last ``window`` of the run's
    evaluations and the ``window`` before it (near 0: the metric has stopped moving)."""
    out = {}
    for arm, h in history.dropna(subset=[metric]).groupby("arm", sort=False):
        steps = np.sort(h.step.unique())
        k = max(1, int(round(window * len(steps))))
        if len(steps) < 2 * k:
            out[arm] = float("nan")
            continue
        last = h[h.step.isin(steps[-k:])][metric].mean()
        before = h[h.step.isin(steps[-2 * k:-k])][metric].mean()
        out[arm] = float(last - before)
    return pd.Series(out, name=f"change of {metric}")


def log_slope(table: pd.DataFrame, x: str, y: str, by: str = "seed") -> pd.Series:
    """Per ``by`` group: the least-squares slope of log(y) against log(x) (e.g. loss against width)."""
    out = {}
    for key, t in table.groupby(by, sort=True):
        out[key] = float(np.polyfit(np.log(t[x].to_numpy(float)), np.log(t[y].to_numpy(float)), 1)[0])
    return pd.Series(out, name=f"d log {y} / d log {x}")


# ---------------------------------------------------------------- same-sign gradient rows

def _row_stats(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For weight gradients ``(..., out, in)``: whether each row's entries all share a strict sign,
    and each row's sign agreement ``|Σ_j sign(g_ij)| / in`` (1: one sign; ~0: mixed)."""
    one_sign = (g > 0).all(-1) | (g < 0).all(-1)
    agreement = torch.sign(g).sum(-1).abs() / g.shape[-1]
    return one_sign, agreement


def same_sign(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, weight: str) -> dict[str, float]:
    """How often the rows of ``weight``'s gradient (one row per unit: its incoming weights) have one sign.

    ``weight`` names a parameter of ``model`` (``"4.weight"``: an MLP's second linear
    layer); a convolution kernel's row is all its input channels and taps.

    ``∂L/∂W_j = δ_j · h`` for unit ``j`` with input vector ``h``: for one sample every entry
    of the row has the sign of ``δ_j`` times that of ``h_i``, so when the layer's inputs are
    all positive (sigmoid outputs) each per-sample row has a single sign (LeCun et al.
    1998, §4.4). Returns the fraction of single-sign rows per sample (``per_sample``) and
    for the minibatch mean gradient (``batch``), and the mean sign agreement of the batch
    gradient's rows (``batch_agreement``).
    """
    params = {n: p.detach() for n, p in model.named_parameters()}
    if weight not in params or params[weight].ndim < 2:
        raise ValueError(f"{weight!r} is not a weight of the model; valid: "
                         f"{', '.join(n for n, p in params.items() if p.ndim >= 2)}")
    was = model.training
    model.eval()

    def loss(p: dict[str, torch.Tensor], xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, p, (xb.unsqueeze(0),)), yb.unsqueeze(0))

    per = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)[weight]
    per = per.reshape(per.shape[0], per.shape[1], -1)       # (n, out, in) (a kernel's taps flattened)
    model.train(was)
    one_sample, _ = _row_stats(per)
    one_batch, agreement = _row_stats(per.mean(0))
    return {"per_sample": float(one_sample.float().mean()), "batch": float(one_batch.float().mean()),
            "batch_agreement": float(agreement.mean())}


def second_weight(model: torch.nn.Module) -> str:
    """The name of the second weight tensor (ndim ≥ 2): the first layer whose inputs are activations."""
    names = [n for n, p in model.named_parameters() if p.ndim >= 2]
    if len(names) < 2:
        raise ValueError("the model has fewer than two weight layers")
    return names[1]


def same_sign_table(specs: Mapping[str, Mapping[str, Any]], x: torch.Tensor, y: torch.Tensor, weight: str,
                    seeds: Sequence[int], states: Mapping[tuple[str, int], Mapping[str, torch.Tensor]] | None = None
                    ) -> pd.DataFrame:
    """:func:`same_sign` for each named model spec and seed, at initialization (``build_model`` after
    seeding) and, where ``states`` holds trained parameters by ``(name, seed)``, after training."""
    from ..seeding import seed_everything

    rows = []
    for name, spec in specs.items():
        for s in seeds:
            seed_everything(int(s))
            net = build_model(dict(spec))
            rows.append({"arm": name, "seed": s, "when": "initialization", **same_sign(net, x, y, weight)})
            if states is not None and (name, s) in states:
                net.load_state_dict(states[(name, s)])
                rows.append({"arm": name, "seed": s, "when": "after training", **same_sign(net, x, y, weight)})
    return pd.DataFrame(rows)
