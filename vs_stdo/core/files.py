"""Writing files atomically: a reader (or a crash) sees the old file or the whole new one, never a part.

Every file the tool writes (bundles, checkpoints, ONNX files, reports, cached clips) goes through
`atomic_write`: the data goes to a temporary file in the same folder, is flushed and fsynced, renamed
over the target with os.replace, and the folder is fsynced so that the rename survives a power cut.
The temporary file's name is fixed (`.NAME.tmp`), so one left by a killed process is overwritten by the
next write instead of piling up.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Yield a binary file to write; on a clean exit it replaces `path`, on an error it is removed."""
    path = Path(path)
    folder = path.parent
    tmp = folder / f".{path.name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the permissions any new file gets
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # also when a killed run left the file behind
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (see atomic_write)."""
    with atomic_write(path) as f:
        f.write(data)
