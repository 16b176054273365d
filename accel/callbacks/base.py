"""The base of every measuring callback: what "step" means, rows as a table, state in checkpoints.

**Step.** Update ``s`` (0-based) turns the weights ``w_s`` into ``w_{s+1}``. A row about
that update, or about anything computed from ``w_s`` (the batch's loss, its gradient,
the step size the optimizer took), carries ``step = s``; a row about the weights after
it (a test accuracy, a Hessian eigenvalue, dead units) carries ``step = s + 1``, the
number of updates applied. Measured before any update, a row carries ``step = 0``.
So a loss curve and a gradient-norm curve line up on ``step`` without offsets.

In Lightning terms: in ``on_before_optimizer_step`` and ``on_train_batch_start`` the
update about to happen is ``trainer.global_step``; in ``on_train_batch_end`` the update
just taken is ``trainer.global_step - 1`` and the weights are at ``trainer.global_step``.
"""
from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import pytorch_lightning as pl

from ..checks import positive_int


def update_index(trainer: pl.Trainer, *, after_update: bool) -> int:
    """The 0-based index of the update a hook sees (``after_update``: in ``on_train_batch_end``)."""
    return trainer.global_step - 1 if after_update else trainer.global_step


def updates_applied(trainer: pl.Trainer) -> int:
    """How many updates the current weights have received."""
    return trainer.global_step


class Monitor(pl.Callback):
    """Measures every ``every`` steps and keeps one row per measurement.

    Subclasses call :meth:`due` to decide and :meth:`record` to store; ``frame()`` is the
    table; the rows travel in Lightning checkpoints (``state_dict``), so a resumed run
    keeps its history.
    """

    columns: Sequence[str] | None = None

    def __init__(self, every: int = 1) -> None:
        self.every = positive_int("every", every)
        self.rows: list[dict[str, Any]] = []

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def record(self, step: int, **values: Any) -> None:
        self.rows.append({"step": int(step), **values})

    def record_table(self, step: int, table: pd.DataFrame) -> None:
        """One row per row of ``table`` (a per-layer measurement), all at ``step``."""
        self.rows += table.assign(step=int(step)).to_dict("records")

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=self.columns)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": list(self.rows)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))
