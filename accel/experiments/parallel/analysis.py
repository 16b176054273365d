"""Tidy tables from the ranks' rows: one row per repeat and configuration, ready for claims.

A step of synchronous parallel training ends when its last process ends, so step times
are the maximum over ranks of each iteration's wall time (every iteration starts at a
barrier); per repeat, the median over its iterations. Fractions and predictions are
computed per repeat, so the spread over repeats is what the t-tests see.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .cost_model import fit_alpha_beta, gpipe_bubble, relative_errors
from .stragglers import simulate_steps


def rows(parts: Sequence[dict[str, Any]], key: str) -> pd.DataFrame:
    """Every rank's rows under ``key``, as one table."""
    return pd.DataFrame([row for part in parts for row in part[key]])


def alpha_beta_fits(comm: pd.DataFrame) -> pd.DataFrame:
    """One α–β fit per operation and repeat, on rank 0's timings, with its median |relative error|."""
    out = []
    for (op, r), g in comm[comm["rank"] == 0].groupby(["op", "repeat"]):
        fit = fit_alpha_beta(g["bytes"], g["seconds"])
        err = np.abs(relative_errors(fit, g["bytes"], g["seconds"]))
        out.append(dict(op=op, repeat=r, alpha=fit.alpha, beta=fit.beta, bandwidth=fit.bandwidth,
                        median_rel_error=float(np.median(err)), max_rel_error=float(err.max())))
    return pd.DataFrame(out)


def dp_table(dp: pd.DataFrame) -> pd.DataFrame:
    """Per (repeat, model, batch): the ranks' mean compute, wait and all-reduce, and the
    all-reduce's share of the step."""
    t = dp.groupby(["repeat", "model", "batch"], as_index=False).agg(
        compute=("compute", "mean"), wait=("wait", "mean"), allreduce=("allreduce", "mean"),
        grad_bytes=("grad_bytes", "first"), parameters=("parameters", "first"))
    t["step"] = t.compute + t.wait + t.allreduce
    t["share"] = t.allreduce / t.step
    return t


def _steps(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per iteration: the step (max wall over ranks) and the ranks' mean busy time; then the
    median over iterations of each repeat."""
    it = frame.groupby([*by, "iteration"], as_index=False).agg(step=("wall", "max"), busy=("busy", "mean"),
                                                                 busy_max=("busy", "max"))
    it["bubble"] = 1 - it.busy / it.step
    return it.groupby(by, as_index=False)[["step", "busy", "busy_max", "bubble"]].median()


def bubble_table(pipe: pd.DataFrame, stages: int) -> pd.DataFrame:
    """Per (repeat, micro-batches): the measured idle fraction and GPipe's (p − 1)/(m + p − 1)."""
    t = _steps(pipe, ["repeat", "micro_batches"])
    t["gpipe"] = [gpipe_bubble(stages, int(m)) for m in t.micro_batches]
    t["excess"] = t.bubble - t.gpipe
    return t


def cut_table(cut: pd.DataFrame) -> pd.DataFrame:
    """Per (repeat, cut): the step time and the bytes sent per step (both directions)."""
    t = _steps(cut, ["repeat", "cut"])
    sent = cut.groupby(["repeat", "cut", "iteration", "rank"]).bytes_sent.first()
    sent = sent.groupby(["repeat", "cut"]).sum() / cut.iteration.nunique()
    floats = cut.groupby(["repeat", "cut"]).cut_floats.first()
    return t.merge(sent.rename("bytes").reset_index(), on=["repeat", "cut"]).merge(
        floats.reset_index(), on=["repeat", "cut"])


def straggler_table(strag: pd.DataFrame) -> pd.DataFrame:
    """Per (processes, arm, repeat): mean step time, and the two predictions from the same
    steps' work times: slowest process (max) or average process (mean), each plus the
    all-reduce time measured without delays in that repeat."""
    per_step = strag.groupby(["processes", "arm", "repeat", "step_index"], as_index=False).agg(
        step=("step", "mean"), max_work=("work", "max"), mean_work=("work", "mean"))
    t = per_step.groupby(["processes", "arm", "repeat"], as_index=False)[["step", "max_work", "mean_work"]].mean()
    base = t[t.arm == "no delay"].set_index(["processes", "repeat"]).step.rename("overhead")
    t = t.join(base, on=["processes", "repeat"])
    t["max_model"] = t.max_work + t.overhead
    t["mean_model"] = t.mean_work + t.overhead
    t["waiting"] = t.step - t.overhead  # the step's part due to work and waiting for the slowest
    return t


def simulated_waiting(strag: pd.DataFrame, calibrate_on: int, processes: Sequence[int], steps: int,
                      seed: int) -> pd.DataFrame:
    """E[max over p processes of a work time] drawn from the work times measured with
    ``calibrate_on`` processes (all delayed), per repeat; and the mean for comparison."""
    rng = np.random.default_rng(seed)
    out = []
    cal = strag[(strag.arm == "all delayed") & (strag.processes == calibrate_on)]
    for r, g in cal.groupby("repeat"):
        work = g.work.to_numpy()
        for p in processes:
            sim = simulate_steps(work, int(p), 0.0, steps, rng)
            out.append(dict(repeat=r, processes=int(p), simulated=float(sim.mean()),
                            mean_work=float(work.mean())))
    return pd.DataFrame(out)
