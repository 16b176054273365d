"""A figure or table the page shows must carry data: the build fails otherwise."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import seaborn as sns  # noqa: E402

from accel.repro.figures import EmptyEvidence, axes_without_data, publish, publish_table  # noqa: E402


def test_axes_with_lines_bars_heatmaps_and_points_count_as_data():
    fig, ax = plt.subplots(1, 4)
    ax[0].plot([1, 2], [3, 4])
    sns.barplot(x=["a", "b"], y=[1, 2], ax=ax[1])
    sns.heatmap([[1, 2], [3, 4]], ax=ax[2])
    sns.scatterplot(x=[1, 2], y=[1, 2], ax=ax[3])
    assert axes_without_data(fig) == []
    publish("ok", fig)  # outside a kernel: checked, not glued


def test_an_empty_axis_or_table_is_refused():
    fig, ax = plt.subplots(1, 2)
    ax[0].plot([1, 2], [3, 4])
    sns.lineplot(pd.DataFrame({"x": [], "y": []}), x="x", y="y", ax=ax[1])
    ax[1].set_title("trust ratios")
    with pytest.raises(EmptyEvidence, match="trust ratios"):
        publish("fig-ratios", fig)
    with pytest.raises(EmptyEvidence, match="empty"):
        publish_table("tab-ratios", pd.DataFrame(columns=["layer", "ratio"]))
    assert publish_table("tab", pd.DataFrame({"a": [1.0]})) is not None


def test_tables_show_numbers_to_four_digits_a_dash_for_nan_and_no_default_index():
    from accel.repro.figures import book_table_html, cell_text
    table = pd.DataFrame({"arm": ["a", "b"], "lr": [0.001, 3.1622776], "steps to target": [120.0, float("nan")]})
    html = book_table_html(table)
    assert ">3.162<" in html and ">0.001<" in html and ">–<" in html and "3.162278" not in html
    assert "NaN" not in html and "0.001000" not in html and "row_heading" not in html  # no 0, 1 index column
    indexed = book_table_html(table.set_index("arm"))
    assert "row_heading" in indexed  # a meaningful index stays
    assert cell_text(25000) == "25\u202f000" and cell_text("ReLU") == "ReLU" and cell_text(True) == "True"
    styled = publish_table("tab", table).to_html()
    assert ">3.162<" in styled and ">–<" in styled


def test_a_figure_wider_than_the_column_is_narrowed_to_it():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from accel.repro.figures import fit_to_column

    for layout in (None, "constrained"):
        _narrowed(plt, layout)
    narrow, ax = plt.subplots(figsize=(5, 3))
    ax.plot([0, 1], [0, 1])
    before = tuple(narrow.get_size_inches())
    fit_to_column(narrow)
    assert tuple(narrow.get_size_inches()) == before  # a figure that fits is left alone
    plt.close("all")


def _narrowed(plt, layout):
    import io

    from accel.repro.figures import MAX_WIDTH, fit_to_column

    fig, axes = plt.subplots(1, 3, figsize=(12, 3), layout=layout)
    for ax in axes:
        ax.plot([0, 1], [0, 1], label="a long legend label")
        ax.set(xlabel="x (units)", ylabel="y (units)")
    axes[-1].legend(loc="center left", bbox_to_anchor=(1, 0.5))  # outside: the tight box grows
    assert fit_to_column(fig) <= MAX_WIDTH
    assert fig.get_size_inches()[1] == 3  # the height is kept
    svg = io.BytesIO()
    fig.savefig(svg, format="svg", bbox_inches="tight", pad_inches=0)  # what the page shows
    width_pt = float(svg.getvalue().decode().split('width="', 1)[1].split("pt", 1)[0])
    assert width_pt / 72 <= MAX_WIDTH + 0.01
