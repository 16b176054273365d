"""Atomic writes: a reader sees the old file or the whole new one, never a partial one."""
import json

import pytest

from accel.atomic import atomic_path, write_json_atomic, write_text_atomic


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out" / "record.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError, match="writer died"):
        with atomic_path(target) as tmp:
            tmp.write_text('{"a": 2, "b": ')  # half a record reaches the disk
            raise RuntimeError("writer died")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in target.parent.iterdir()] == ["record.json"]


def test_temporary_keeps_the_suffix_and_is_hidden(tmp_path):
    with atomic_path(tmp_path / "fig.png") as tmp:
        assert tmp.suffix == ".png" and tmp.name.startswith(".")
        tmp.write_bytes(b"png")
    assert (tmp_path / "fig.png").read_bytes() == b"png"
    assert write_text_atomic(tmp_path / "a.md", "x").read_text() == "x"
