"""The template learns: trained a few dozen steps on a tiny one-performer set, a narrowed template rolls out,
with z from the prior, above copy-first-frame (a dead model stays at or below it)."""
import pytest

from cvae_video.data.synthetic import generate
from cvae_video.train import train

NARROW = ["model.frame_dim=32", "model.label_dim=8", "model.noise_dim=4", "model.fusion_dim=48"]


@pytest.mark.slow
def test_a_narrowed_template_rolls_out_above_copy_first_frame(compose_train, tmp_path):
    root = generate(tmp_path / "one_performer", train_videos=4, train_video_len=96, test_videos=1, sequence_len=64)
    cfg = compose_train([f"data.root={root}", f"paths.output_dir={tmp_path / 'run'}", *NARROW, "data.train_vi_len=8",
                         "data.val_vi_len=64", "data.batch_size=4", "trainer.max_epochs=4", "trainer.val_check_interval=1.0",
                         "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"])
    metrics = train(cfg)
    assert metrics["val/psnr_over_copy_first"] > 1.0, metrics["val/psnr"]
