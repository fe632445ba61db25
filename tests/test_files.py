"""harness.files.write_problem: whether a folder takes files, found by writing one, leaving nothing."""
from pathlib import Path

import pytest

from harness.files import write_problem

needs_proc = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no /proc: a folder no one can write to")


def test_a_missing_folder_is_tried_and_removed_again(tmp_path):
    folder = tmp_path / "a" / "b" / "c"
    assert write_problem(folder) is None
    assert list(tmp_path.iterdir()) == []  # each folder the check made is gone


def test_an_existing_folder_keeps_what_it_holds_and_no_probe(tmp_path):
    (tmp_path / "kept.txt").write_text("x")
    assert write_problem(tmp_path) is None
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("x")
    assert write_problem(tmp_path / "file" / "sub").startswith("cannot be made (mkdir ")
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


@needs_proc
def test_folders_that_take_no_files():
    assert write_problem(Path("/proc")).startswith("not writable (creating a file in it failed: ")
    assert write_problem(Path("/proc/normclaims/x")) == "cannot be made (mkdir /proc/normclaims: No such file or directory)"
