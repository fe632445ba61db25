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
