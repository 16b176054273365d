"""Publishing a chapter's figures and tables: checked for content, glued for numbered captions.

A chapter draws with seaborn, then calls :func:`publish` (a figure) or
:func:`publish_table` (a DataFrame). Both refuse what a reader could not use: a figure
with an axis that shows no data, a table with no rows. Published objects are glued
under their name, so the prose places them as numbered, captioned figures::

    ```{glue:figure} fig-depth-std
    :name: fig-depth-std
    :alt: Standard deviation of activations against layer, one line per scheme.

    Signal scale through depth ...
    ```

and refers to them with ``{numref}`fig-depth-std```.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .verdicts import NOT_A_NUMBER, fmt_number

FIGURE_FORMAT = "svg"  # vector output: sharp at any zoom, small for line plots
FIGURE_WIDTH = 7.5     # inches: the content column at 1400 px is about 8 in, so 9-pt text stays 9 pt
MAX_WIDTH = 7.8        # inches: the widest a published figure is saved (see fit_to_column)


class EmptyEvidence(ValueError):
    """A figure or table the chapter shows would carry no data."""


def axes_without_data(fig: Any) -> list[str]:
    """Titles (or positions) of the visible axes that plot nothing."""
    empty = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        has = any(_artist_has_data(a) for a in ax.get_children())
        if not has:
            empty.append(ax.get_title() or f"axes {i}")
    return empty


def _artist_has_data(artist: Any) -> bool:
    from matplotlib.collections import Collection, PathCollection
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    if isinstance(artist, Line2D):
        x, y = artist.get_data()
        return len(x) > 0 and len(y) > 0
    if isinstance(artist, PathCollection):  # scatter: the data are the offsets, not the marker path
        return len(artist.get_offsets()) > 0
    if isinstance(artist, Collection):
        return any(len(path.vertices) > 0 for path in artist.get_paths())
    if isinstance(artist, AxesImage):
        return artist.get_array() is not None and artist.get_array().size > 0
    if isinstance(artist, Rectangle):  # bars; the axes' own background patch has no label
        return artist.get_height() != 0 and artist.get_label() != "" and artist.axes is not None \
            and artist is not artist.axes.patch
    return False


def publish(name: str, fig: Any, *, display: bool = False) -> Any:
    """Check ``fig`` has data on every visible axis, glue it as ``name`` and close it."""
    import matplotlib.pyplot as plt

    empty = axes_without_data(fig)
    if empty:
        plt.close(fig)
        raise EmptyEvidence(f"figure {name!r} has axes with no data: {empty}; a verdict must be computed "
                            f"from data the page shows")
    fit_to_column(fig)
    _glue(name, fig, display)
    plt.close(fig)
    return fig


def fit_to_column(fig: Any, max_width: float = MAX_WIDTH) -> float:
    """Narrow a figure whose saved (tight) width exceeds ``max_width`` inches; return its width.

    The page shows a wider figure shrunk to the column, and its 9-pt text with it (the
    browser check reports that); narrowing the canvas instead keeps the text at its point
    size and lets the layout engine re-pack the panels. The height is kept.
    """
    for _ in range(4):
        width = _saved_width(fig)
        if width <= max_width:
            return width
        w, h = fig.get_size_inches()
        fig.set_size_inches(max(w - (width - max_width) - 0.05, 1.0), h)
        if fig.get_layout_engine() is None:
            fig.tight_layout()
    return _saved_width(fig)


def _saved_width(fig: Any) -> float:
    """The width in inches ``savefig(bbox_inches="tight")`` gives, after the layout engine has run."""
    fig.draw_without_rendering()  # constrained layout places the axes (and outside legends) at draw time
    return float(fig.get_tightbbox(fig.canvas.get_renderer()).width)


def publish_table(name: str, table: pd.DataFrame, *, display: bool = False, formats: Any = None) -> Any:
    """Check ``table`` has rows, glue it (no index column) as ``name``; return the styled table.

    ``formats`` (a format string, a callable, or a dict per column) overrides the default:
    4 significant digits (:func:`cell_text`), "–" where a value does not exist (NaN).
    """
    if table is None or len(table) == 0:
        raise EmptyEvidence(f"table {name!r} is empty; a verdict must be computed from data the page shows")
    styled = table.style.hide(axis="index").format(cell_text, na_rep=NOT_A_NUMBER)
    if formats is not None:
        styled = styled.format(formats, na_rep=NOT_A_NUMBER)
    _glue(name, styled, display)
    return styled


def cell_text(value: Any) -> str:
    """A table cell as the book shows it: numbers to 4 significant digits, "–" for NaN, text as is."""
    if isinstance(value, (float, np.floating)) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)):
        return fmt_number(value)
    return str(value)


def book_table_html(table: pd.DataFrame) -> str:
    """How a displayed DataFrame reads in the book: no default 0..n-1 index column, numbers to 4
    significant digits, "–" for NaN. Long tables keep pandas' own (truncated) display."""
    if type(table) is not pd.DataFrame:  # a subclass with its own HTML (the verdict table)
        return table._repr_html_()
    if len(table) > pd.get_option("display.max_rows") or table.shape[1] > 30:
        return pd.DataFrame._repr_html_(table)  # pandas' own truncated table
    styled = table.style.format(cell_text, na_rep=NOT_A_NUMBER)
    index = table.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None:
        styled = styled.hide(axis="index")
    return styled.to_html()


def _glue(name: str, value: Any, display: bool) -> None:
    try:
        from IPython import get_ipython
        if get_ipython() is None:
            return
        from myst_nb import glue
    except ImportError:
        return
    glue(name, value, display=display)


def use_book_style() -> None:
    """Figures readable at page width (seaborn's paper context, vector output, fonts >= 9 pt) and
    tables as the book shows them (:func:`book_table_html`); call it once in the setup cell."""
    import matplotlib as mpl
    import seaborn as sns

    pd.set_option("display.float_format", lambda x: fmt_number(x))
    pd.set_option("styler.format.na_rep", NOT_A_NUMBER)
    pd.set_option("styler.format.formatter", cell_text)
    try:
        from IPython import get_ipython
        shell = get_ipython()
        if shell is not None:
            shell.display_formatter.formatters["text/html"].for_type(pd.DataFrame, book_table_html)
    except ImportError:
        pass

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    mpl.rcParams.update({"figure.figsize": (FIGURE_WIDTH, 3.4), "figure.dpi": 110, "savefig.bbox": "tight",
                         "legend.fontsize": 9,
                         "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9,
                         "ytick.labelsize": 9})
    try:
        from matplotlib_inline.backend_inline import set_matplotlib_formats
        set_matplotlib_formats(FIGURE_FORMAT)
    except ImportError:
        pass
