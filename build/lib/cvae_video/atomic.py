"""Atomic file writes: write to a temporary file beside the target, then rename it into place.

A crash or an exception mid-write leaves the previous file (if any) untouched, never a half-written one.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces `target`, on error it is removed.

    For writers that take a path (PIL, matplotlib, torch.save): `with atomic_path(p) as tmp: img.save(tmp, format="PNG")`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
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
