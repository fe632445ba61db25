"""Files written whole or not at all: a session killed mid-write leaves the old file or none."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb", suffix: str = ".tmp"):
    """Yield a temporary file beside `path`; on success it replaces `path` in one rename, with the
    permissions a plain open() would give (a temporary file is private to its owner); on an error
    it is removed. A concurrent reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = {} if "b" in mode else {"encoding": "utf-8"}
    tmp = tempfile.NamedTemporaryFile(mode, dir=path.parent, suffix=suffix, delete=False, **text)
    try:
        with tmp:
            yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp.name, 0o666 & ~umask)
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise


def write_problem(folder: Path) -> str | None:
    """Why files cannot be written in `folder`, found by writing one: permission bits say nothing
    to root, on a read-only mount or in /proc. The folder (and its missing parents) is made for the
    try and removed again with the probe file, so the check leaves nothing behind: a session that
    then stops on another error has written nothing. None when a file can be written there."""
    folder = Path(folder)
    made: list[Path] = []  # the folders this check created, deepest first
    try:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"cannot be made (mkdir {exc.filename or folder}: {exc.strerror})"
        finally:
            made = [p for p in missing if p.exists()]
        try:
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".normclaims-probe-"):
                pass  # created and removed on close
        except OSError as exc:
            return f"not writable (creating a file in it failed: {exc.strerror})"
        return None
    except OSError as exc:  # e.g. a parent that cannot be searched
        return f"cannot be checked ({exc.strerror}: {exc.filename})"
    finally:
        for path in made:
            with contextlib.suppress(OSError):  # not empty: someone else is using it now
                path.rmdir()
