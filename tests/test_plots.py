import shutil

import pytest
from omegaconf import OmegaConf
from PIL import Image

from cvae_video.errors import UserError
from cvae_video.plots import (
    collect_runs,
    epoch_metrics,
    find_runs,
    main,
    merge_identical,
    per_minute_lines,
    pick_epochs,
    psnr_curves,
)

FIGURES = ["loss.png", "schedules.png", "val_psnr.png", "val_psnr_vs_minutes.png", "val_psnr_per_frame.png"]
# What Lightning's CSVLogger writes: one row per log call, blanks for keys not logged, the LR monitor's
# rows without an epoch (it logs at the start of the epoch, by step).
CSV = """schedule/beta,epoch,schedule/lr,step,schedule/tfr,train/loss_epoch,train/loss_step,val/psnr
,,0.001,0,,,,
,0,,0,,,5.0,
,0,,1,,,,11.5
0.0,0,,1,1.0,4.0,,
,,0.0001,2,,,,
,1,,2,,,3.0,
,1,,3,,,,12.5
0.5,1,,3,0.9,2.0,,
"""


def test_epoch_metrics_reads_one_value_per_key_and_epoch(tmp_path):
    (tmp_path / "csv" / "version_0").mkdir(parents=True)
    (tmp_path / "csv" / "version_0" / "metrics.csv").write_text(CSV)
    m = epoch_metrics(tmp_path)
    assert m["schedule/lr"] == {0: 0.001, 1: 0.0001}  # the LR rows go to the next epoch
    assert m["schedule/beta"] == {0: 0.0, 1: 0.5} and m["schedule/tfr"] == {0: 1.0, 1: 0.9}
    assert m["train/loss_epoch"] == {0: 4.0, 1: 2.0} and m["val/psnr"] == {0: 11.5, 1: 12.5}


def test_pick_epochs_spreads_or_keeps_the_asked_ones():
    assert pick_epochs([0, 1, 2], None) == [0, 1, 2]
    assert pick_epochs(list(range(10)), None) == [0, 3, 6, 9]
    assert pick_epochs(list(range(10)), [2, 5, 42]) == [2, 5]


def test_plots_on_a_run_dir_writes_the_figures(tiny_run, tmp_path, capsys):
    written = main([str(tiny_run), "--out", str(tmp_path)])
    assert [p.name for p in written] == FIGURES
    for name in FIGURES:
        with Image.open(tmp_path / name) as img:
            assert img.format == "PNG" and img.width > 400
    assert "figure: " in capsys.readouterr().out
    assert sorted(psnr_curves(tiny_run)) == [0, 1] and len(psnr_curves(tiny_run)[1]) == 11


def test_a_run_without_csv_logs_gets_the_per_frame_figure_only(tiny_run, tmp_path):
    run = tmp_path / "run"  # as with logger=wandb alone
    run.mkdir()
    shutil.copy(tiny_run / "val_psnr_per_frame.jsonl", run)
    assert [p.name for p in main([str(run)])] == ["val_psnr_per_frame.png"]


def test_plots_on_a_sweep_dir_labels_runs_by_their_differing_overrides(tiny_run, tmp_path):
    sweep = tmp_path / "sweep"
    for n, kl in enumerate(["none", "cyclical"]):
        run = sweep / str(n)
        shutil.copytree(tiny_run / "csv", run / "csv")
        shutil.copy(tiny_run / "val_psnr_per_frame.jsonl", run)
        (run / ".hydra").mkdir()
        OmegaConf.save(OmegaConf.create([f"kl={kl}", "seed=1"]), run / ".hydra" / "overrides.yaml")
    assert list(find_runs(sweep)) == ["kl=none", "kl=cyclical"]
    written = main([str(sweep)])
    assert [p.name for p in written] == FIGURES and all(p.parent == sweep / "plots" for p in written)


def test_several_run_dirs_are_overlaid_under_their_labels(tiny_run, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    assert list(collect_runs([tiny_run, other])) == [tiny_run.name, "other"]
    runs = collect_runs([tiny_run, other], ["template", "small"])
    assert runs == {"template": tiny_run, "small": other}
    assert list(per_minute_lines({k: epoch_metrics(v) for k, v in runs.items()}, "val/psnr")) == ["template", "small"]
    written = main([str(tiny_run), str(other), "--labels", "template", "small", "--out", str(tmp_path / "both")])
    assert [p.name for p in written] == FIGURES
    with pytest.raises(SystemExit, match="error: --labels: 1 given for 2 runs"):
        main([str(tiny_run), str(other), "--labels", "template"])
    with pytest.raises(UserError, match="each run needs its own label"):
        collect_runs([tiny_run, other], ["a", "a"])
    twin = tmp_path / "twin" / tiny_run.name  # same folder name: labelled by path
    shutil.copytree(tiny_run, twin)
    assert list(collect_runs([tiny_run, twin])) == [str(tiny_run), str(twin)]


def test_plots_on_a_folder_without_runs_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="neither a run dir"):
        find_runs(tmp_path)
    with pytest.raises(SystemExit, match="error: .* does not exist"):
        main([str(tmp_path / "nope")])


def test_lines_that_coincide_are_drawn_once_under_both_labels():
    """Best of N equals the mean when the samples agree: one line, one legend entry naming both; a line apart by more
    than 0.5% of the panel's range stays its own."""
    x = [1, 2, 3]
    lines = {
        "copy the first frame": (x, [19.0, 18.0, 17.0]),
        "model, best of 3": (x, [25.0, 26.0, 27.0]),
        "model, mean of 3 samples": (x, [25.0, 26.0, 27.01]),
        "one step": (x, [25.0, 26.0, 27.3]),
    }
    assert merge_identical(lines) == {
        "copy the first frame": (x, [19.0, 18.0, 17.0]),
        "one step": (x, [25.0, 26.0, 27.3]),
        "model, best of 3 = model, mean of 3 samples": (x, [25.0, 26.0, 27.0]),
    }
