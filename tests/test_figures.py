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
