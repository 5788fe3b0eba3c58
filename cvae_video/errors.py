"""One-line errors for the user: bad data, bad config values, a missing checkpoint.

Entry points wrap their task in `user_errors`: a `UserError` becomes `error: <message>` on stderr and
exit status 1 (Hydra passes `SystemExit` through untouched); `HYDRA_FULL_ERROR=1` shows the traceback.
"""
from __future__ import annotations

import functools
import os
from typing import Callable


class UserError(ValueError):
    """A problem the user can fix; the message names the file or config key and what was expected."""


def user_errors(task: Callable) -> Callable:
    @functools.wraps(task)
    def wrapped(*args, **kwargs):
        try:
            return task(*args, **kwargs)
        except UserError as err:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            raise SystemExit(f"error: {err}") from None
    return wrapped
