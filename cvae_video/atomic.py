"""Atomic file writes: write to a temporary file beside the target, flush it to disk, then rename it into place.

A crash or an exception mid-write leaves the previous file (if any) untouched, never a half-written one. The
file gets the mode a plain `open` would give (0666 less the umask), so others can read a submission or figure.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

UMASK = os.umask(0o022)  # reading the umask means setting it: put it back at once
os.umask(UMASK)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces `target`, on error it is removed.

    For writers that take a path (PIL, matplotlib, torch.save):
    `with atomic_path(p) as tmp: img.save(tmp, format="PNG")`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)  # mode 0600
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as written:  # the writer has closed it: flush what it wrote to the disk
            os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~UMASK)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(target: str | Path, mode: str = "w", **kwargs) -> Iterator[IO]:
    """`open` for writing that replaces `target` only once the `with` block has finished without error."""
    with atomic_path(target) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
