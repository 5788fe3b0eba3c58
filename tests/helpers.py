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


class RecordBatches(L.Callback):
    """Appends, per training batch, each clip's pixel sum (a fingerprint of which clip it is) to
    `<run dir>/batches_rank<global rank>.txt`: which clips each DDP process trained on."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        frames = batch[0]  # (B, T, 3, H, W)
        with open(f"{trainer.default_root_dir}/batches_rank{trainer.global_rank}.txt", "a") as f:
            f.writelines(f"{v:.4f}\n" for v in frames.sum(dim=(1, 2, 3, 4)).tolist())
