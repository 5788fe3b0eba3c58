"""One-line errors for the user: bad data, bad config values, a missing checkpoint.

Entry points wrap their Hydra task in `user_errors`: a `UserError` becomes `error: <message>` on
stderr and exit status 1 (Hydra passes `SystemExit` through untouched); `HYDRA_FULL_ERROR=1` shows the
traceback instead. The run dir Hydra made for the failed run is removed when it holds nothing but
Hydra's own files, so a bad input leaves no output behind (a refused resume: its own `.hydra/resume_*` record).
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig


class UserError(ValueError):
    """A problem the user can fix; the message names the file or config key and what was expected."""


def _only_hydra_files(run_dir: Path) -> bool:
    files = [p.relative_to(run_dir) for p in run_dir.rglob("*") if p.is_file()]
    return all(p.parts[0] == ".hydra" or (len(p.parts) == 1 and p.suffix == ".log") for p in files)


def _remove_empty_run_dir() -> None:
    """The failed run's dir if it holds only Hydra's files; else (a refused resume) only its own Hydra record."""
    if not HydraConfig.initialized():
        return
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    if run_dir.is_dir() and _only_hydra_files(run_dir):
        shutil.rmtree(run_dir)
    elif HydraConfig.get().output_subdir not in (None, ".hydra"):
        shutil.rmtree(run_dir / HydraConfig.get().output_subdir, ignore_errors=True)


def user_errors(task: Callable) -> Callable:
    @functools.wraps(task)
    def wrapped(*args, **kwargs):
        try:
            return task(*args, **kwargs)
        except UserError as err:
            _remove_empty_run_dir()
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            raise SystemExit(f"error: {err}") from None

    return wrapped
