import pytest

from accel.repro.book import check_can_run, toc_notebooks
from accel.repro.report import render


def test_toc_lists_the_chapters_in_order(root):
    notebooks = toc_notebooks(root)
    assert notebooks and all(nb.suffix == ".md" and nb.exists() for nb in notebooks)
    assert notebooks[0].name == "01_initialization.md"


def test_notebooks_are_stored_as_text_without_outputs(root):
    from accel.repro.notebook import read_notebook
    assert not list((root / "notebooks").glob("*.ipynb")), "chapters are stored as MyST Markdown (.md)"
    for nb_path in (root / "notebooks").glob("*.md"):
        nb = read_notebook(nb_path)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert nb.cells[0].cell_type == "markdown"
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and "profile" in params[0].source and "seed" in params[0].source
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, nb_path.name


def test_full_profile_refuses_a_cpu_only_machine():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        check_can_run("full")


def test_report_lists_failed_claims_with_their_numbers():
    rec = {"notebook": "01_x", "profile": "cpu", "seed": 0, "wall_time_s": 3.0, "claims": [
        {"statement": "A holds", "source": "S1", "measured": 0.5, "criterion": "value < 1", "verdict": "held"},
        {"statement": "B holds", "source": "S2", "measured": 2.5, "criterion": "value < 1", "verdict": "failed"}]}
    page = render([rec])
    assert "2 claims: 1 held, 1 failed, 0 inconclusive" in page
    assert "| B holds | S2 | 2.5 | value < 1 | ❌ failed | cpu | 0 |" in page
    assert "(../notebooks/01_x.ipynb)" in page
