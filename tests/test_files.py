"""Files appear whole or not at all, with ordinary permissions."""
import os

import pytest

from specc import SpecError
from specc.files import atomic_path


def test_the_file_appears_on_success_with_ordinary_permissions(tmp_path):
    target = tmp_path / "deep" / "out.txt"
    with atomic_path(target, make_parents=True) as temporary:
        assert temporary.parent == target.parent and temporary.name.endswith(".tmp")
        temporary.write_text("new")
    assert target.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_a_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_missing_folders_are_made_only_when_asked(tmp_path):
    with pytest.raises(SpecError, match="the folder .* does not exist"):
        with atomic_path(tmp_path / "no" / "x.py"):
            pass
    assert not (tmp_path / "no").exists()
