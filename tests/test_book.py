import pytest

from accel.repro.book import check_can_run, toc_notebooks


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
