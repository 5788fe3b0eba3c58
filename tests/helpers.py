"""Test-only pieces that a subprocess run loads through Hydra (`+callbacks.x._target_=tests.helpers.X`)."""
import os
import signal

import lightning as L


class KillAtStep(L.Callback):
    """SIGKILLs its own process when training reaches `step`: a real crash, at a known point, no timing."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
