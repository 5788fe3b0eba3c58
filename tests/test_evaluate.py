import json
import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchmetrics.functional.image import structural_similarity_index_measure

from cvae_video.errors import UserError
from cvae_video.evaluate import evaluate
from cvae_video.metrics import best_of_n, copy_first_frame, copy_previous_frame, frame_scores, summary
from tests.conftest import cli, compose_config

ROOT = Path(__file__).resolve().parents[1]
C1 = 0.01**2  # SSIM's luminance constant for data range 1


def eval_overrides(tiny_root: Path, ckpt: Path, out: Path) -> list[str]:
    """The tiny set's 12 validation frames as 2 sequences of 6: best-of-N is taken per sequence."""
    return [f"ckpt_path={ckpt}", f"data.root={tiny_root}", "data.val_vi_len=6", f"paths.output_dir={out}", "device=cpu"]


def test_scores_are_per_sample_and_per_frame():
    torch.manual_seed(0)
    truth = torch.rand(3, 2, 3, 16, 32)
    noise = torch.tensor([0.01, 0.1, 0.3]).view(3, 1, 1, 1, 1)  # a different error per sample
    pred = (truth + noise * torch.randn_like(truth)).clamp(0, 1)
    scores = frame_scores(pred, truth)
    assert scores["psnr"].shape == scores["ssim"].shape == (3, 2)
    for b in range(3):
        for t in range(2):
            mse = (pred[b, t] - truth[b, t]).pow(2).mean().item()
            assert math.isclose(scores["psnr"][b, t].item(), 10 * math.log10(1 / mse), rel_tol=1e-5)
            one = structural_similarity_index_measure(pred[b, t][None], truth[b, t][None], data_range=1.0)
            assert math.isclose(scores["ssim"][b, t].item(), one.item(), rel_tol=1e-5)
    assert scores["psnr"][0].min() > scores["psnr"][1].max() > scores["psnr"][2].max()
    means = summary(scores)
    assert math.isclose(means["psnr_mean"], scores["psnr"].mean().item(), rel_tol=1e-6)
    assert means["psnr_per_frame"] == pytest.approx(scores["psnr"].mean(0).tolist())


def test_baselines_on_a_sequence_of_flat_frames():
    levels = [0.2, 0.3, 0.5, 0.9]  # frame t is flat at levels[t]
    frames = torch.tensor(levels).view(1, 4, 1, 1, 1).expand(1, 4, 3, 16, 32)
    truth = frames[:, 1:]

    def ssim_flat(a, b):  # flat images: no contrast or structure, only SSIM's luminance term
        return (2 * a * b + C1) / (a * a + b * b + C1)

    first = frame_scores(copy_first_frame(frames), truth)
    prev = frame_scores(copy_previous_frame(frames), truth)
    for t in (1, 2, 3):
        a, p = levels[t], levels[t - 1]
        assert first["psnr"][0, t - 1].item() == pytest.approx(-10 * math.log10((a - levels[0]) ** 2), rel=1e-4)
        assert prev["psnr"][0, t - 1].item() == pytest.approx(-10 * math.log10((a - p) ** 2), rel=1e-4)
        assert first["ssim"][0, t - 1].item() == pytest.approx(ssim_flat(a, levels[0]), rel=1e-3)  # float32 sums
        assert prev["ssim"][0, t - 1].item() == pytest.approx(ssim_flat(a, p), rel=1e-3)


def test_best_of_n_takes_the_best_sample_per_sequence():
    psnr = torch.tensor(
        [
            [[10.0, 10.0], [30.0, 30.0]],  # sample 0: bad on seq 0, good on seq 1
            [[20.0, 20.0], [5.0, 5.0]],
        ]
    )  # sample 1: the reverse; (N=2, B=2, T=2)
    best = best_of_n({"psnr": psnr, "ssim": -psnr})
    assert best["psnr"].tolist() == [[20.0, 20.0], [30.0, 30.0]]
    assert best["ssim"].tolist() == [[-20.0, -20.0], [-30.0, -30.0]]  # the same sample's other scores
    torch.manual_seed(0)
    psnr = torch.rand(5, 3, 7) * 30
    assert best_of_n({"psnr": psnr})["psnr"].mean() >= psnr.mean()


def test_evaluate_writes_metrics_figure_and_gif(tiny_root, tiny_run, tmp_path):
    cfg = compose_config(
        "evaluate", eval_overrides(tiny_root, tiny_run / "checkpoints" / "last.ckpt", tmp_path) + ["eval.num_samples=4"]
    )
    results = evaluate(cfg)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["psnr_mean"] == results["psnr_mean"]
    assert saved["sequences"] == 2 and len(saved["psnr_per_frame"]) == len(saved["ssim_per_frame"]) == 5
    assert saved["best_of_n"]["n"] == 4 and len(saved["samples"]["psnr_mean_per_sample"]) == 4
    assert saved["best_of_n"]["psnr_mean"] >= max(saved["samples"]["psnr_mean_per_sample"]) - 1e-9
    assert saved["best_of_n"]["psnr_mean"] >= saved["psnr_mean"]
    assert saved["psnr_mean"] == pytest.approx(sum(saved["samples"]["psnr_mean_per_sample"]) / 4)
    latent = saved["latent"]  # what z carries on the 2 sequences x 5 predicted frames
    assert len(latent["kl_per_step"]) == 5 and latent["units"] == 8 * 8 * 16 and latent["kl"] >= 0
    for name in ("copy_first", "copy_prev_gt", "one_step"):
        assert (
            math.isfinite(saved["baselines"][name]["psnr_mean"])
            and len(saved["baselines"][name]["psnr_per_frame"]) == 5
        )
    assert saved["train_config"]["model"]["frame_dim"] == 16 and saved["eval_config"]["eval"]["num_samples"] == 4
    assert saved["checkpoint"].endswith("last.ckpt") and saved["epoch"] == 1
    with Image.open(tmp_path / "psnr_per_frame.png") as img:
        assert img.format == "PNG"
    with Image.open(tmp_path / "val_rollout.gif") as gif:
        assert gif.n_frames == 6 and gif.width > 3 * 64


def test_evaluate_is_reproducible_and_samples_differ(tiny_root, tiny_run, tmp_path):
    overrides = eval_overrides(tiny_root, tiny_run / "checkpoints" / "last.ckpt", tmp_path) + ["eval.num_samples=2"]
    a, b = (evaluate(compose_config("evaluate", overrides)) for _ in range(2))
    assert a["psnr_per_frame"] == b["psnr_per_frame"]
    first, second = a["samples"]["psnr_mean_per_sample"]
    assert first != second  # z differs between samples


def test_missing_checkpoint_is_a_user_error(tiny_root, tmp_path):
    cfg = compose_config("evaluate", eval_overrides(tiny_root, tmp_path / "nope.ckpt", tmp_path))
    with pytest.raises(UserError, match="nope.ckpt does not exist"):
        evaluate(cfg)
    with pytest.raises(UserError, match="ckpt_path is required"):
        evaluate(compose_config("evaluate", [f"paths.output_dir={tmp_path}"]))


@pytest.mark.slow
def test_cli_evaluate_writes_where_hydra_run_dir_points(tiny_root, tiny_run, tmp_path):
    out, ckpt = tmp_path / "eval", tiny_run / "checkpoints" / "last.ckpt"
    args = [f"data.root={tiny_root}", "data.val_vi_len=6", "eval.num_samples=2", f"hydra.run.dir={out}"]
    result = cli("evaluate", f"ckpt_path={ckpt}", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "copy the previous true frame" in result.stdout
    assert json.loads((out / "metrics.json").read_text())["best_of_n"]["n"] == 2
    assert (out / "psnr_per_frame.png").exists() and (out / "val_rollout.gif").exists()
    missing = cli("evaluate", f"ckpt_path={tmp_path / 'nope.ckpt'}", f"hydra.run.dir={tmp_path / 'x'}")
    assert missing.returncode == 1 and missing.stderr.strip().endswith("nope.ckpt does not exist")
