import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cvae_video import prepare_data
from cvae_video.data import lab4
from cvae_video.data.datamodule import LAB4DataModule
from cvae_video.data.synthetic import generate
from cvae_video.errors import UserError
from tests.conftest import TINY


def save(path: Path, value: int, size=(64, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def write_split(root: Path, split: str, n: int, size=(64, 32), label_offset=100):
    for k in range(n):
        save(root / split / f"{split}_img" / f"frame{k}.png", k, size)
        save(root / split / f"{split}_label" / f"frame{k}.png", k + label_offset, size)


def test_frames_sort_by_integer_index(tmp_path):
    for k in (10, 2, 1, 0):
        save(tmp_path / f"frame{k}.png", k)
    assert [p.name for p in lab4.indexed_frames(tmp_path).values()] == [
        "frame0.png",
        "frame1.png",
        "frame2.png",
        "frame10.png",
    ]


def test_loader_pairs_labels_resizes_and_cuts_clips(tmp_path, caplog):
    write_split(tmp_path, "train", 12, size=(128, 64))  # on-disk size differs from frame_H x frame_W
    write_split(tmp_path, "val", 6)
    dm = LAB4DataModule(str(tmp_path), frame_H=32, frame_W=64, train_vi_len=4, val_vi_len=6, shuffle=False)
    dm.setup("fit")
    notes = [r.getMessage() for r in caplog.records if "resized" in r.getMessage()]
    assert notes == [
        f"{tmp_path / 'train/train_img'}: images of 128x64 resized to 64x32 (data.frame_W x data.frame_H)",
        f"{tmp_path / 'train/train_label'}: images of 128x64 resized to 64x32 (data.frame_W x data.frame_H)",
    ]
    assert len(dm.train_set) == 3  # 12 // 4 non-overlapping clips
    frames, poses = dm.train_set[1]
    assert frames.shape == (4, 3, 32, 64) and frames.dtype == torch.float32
    assert [round(v * 255) for v in frames[:, 0, 0, 0].tolist()] == [4, 5, 6, 7]  # frame k has value k
    assert [round(v * 255) for v in poses[:, 0, 0, 0].tolist()] == [104, 105, 106, 107]  # its own pose
    assert len(dm.val_set) == 1


def test_static_background_is_the_training_frames_median(tmp_path):
    """Frames of a grey room (value 120) with a dark 'person' on a third of them: the median is the room."""
    for k in range(9):
        frame = np.full((32, 64, 3), 120, np.uint8)
        frame[10:20, 5 * k : 5 * k + 4] = 30 if k % 3 == 0 else 120
        for kind, image in (("img", frame), ("label", np.zeros_like(frame))):
            path = tmp_path / "train" / f"train_{kind}" / f"frame{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(path)
    write_split(tmp_path, "val", 4)
    dm = LAB4DataModule(str(tmp_path), train_vi_len=4, val_vi_len=4)
    dm.setup("fit")
    background = dm.static_background()
    assert background.shape == (3, 32, 64)
    torch.testing.assert_close(background, torch.full((3, 32, 64), 120 / 255))


def test_clips_never_span_two_videos(tmp_path):
    write_split(tmp_path, "train", 10)
    (tmp_path / "train" / "segments.json").write_text(json.dumps({"starts": [0, 5]}))
    write_split(tmp_path, "val", 4)
    dm = LAB4DataModule(str(tmp_path), train_vi_len=3, val_vi_len=4)
    dm.setup("fit")
    assert dm.train_set.windows == [0, 5]  # [0..2] and [5..7]; [3..5] would cross into video 2


def test_frame_step_spreads_a_clip_over_its_video(tmp_path):
    write_split(tmp_path, "train", 20)
    (tmp_path / "train" / "segments.json").write_text(json.dumps({"starts": [0, 12]}))
    write_split(tmp_path, "val", 4)
    dm = LAB4DataModule(str(tmp_path), train_vi_len=4, train_frame_step=3, val_vi_len=4, shuffle=False)
    dm.setup("fit")
    assert dm.train_set.windows == [0, 1, 2]  # span 10 frames, starts 4 // 3 = 1 apart; video 2 too short
    frames, poses = dm.train_set[2]
    assert [round(v * 255) for v in frames[:, 0, 0, 0].tolist()] == [2, 5, 8, 11]
    assert [round(v * 255) for v in poses[:, 0, 0, 0].tolist()] == [102, 105, 108, 111]


def test_first_gap_puts_a_clips_first_frame_up_to_n_frames_before_the_rest(tmp_path):
    write_split(tmp_path, "train", 30)
    (tmp_path / "train" / "segments.json").write_text(json.dumps({"starts": [0, 20]}))
    write_split(tmp_path, "val", 4)
    dm = LAB4DataModule(str(tmp_path), train_vi_len=4, train_first_gap=10, val_vi_len=4, shuffle=False)
    dm.setup("fit")
    assert dm.train_set.windows == [0, 1, 2, 3, 4, 5, 6, 7]  # span 10 + 2 + 1 = 13 frames; video 2 too short
    torch.manual_seed(0)
    gaps = set()
    for _ in range(200):
        frames, poses = dm.train_set[7]
        index = [round(v * 255) for v in frames[:, 0, 0, 0].tolist()]
        assert [round(v * 255) - 100 for v in poses[:, 0, 0, 0].tolist()] == index  # pairs kept
        first, second = index[0], index[1]
        assert first == 7 and index[1:] == [second, second + 1, second + 2] and second + 2 < 20
        gaps.add(second - first)
    assert gaps == set(range(1, 11))


def test_partial_keeps_a_fraction_of_the_clips(tmp_path):
    write_split(tmp_path, "train", 40)
    write_split(tmp_path, "val", 4)
    dm = LAB4DataModule(str(tmp_path), train_vi_len=4, val_vi_len=4, partial=0.5)
    dm.setup("fit")
    assert len(dm.train_set) == 5


def test_synthetic_set_has_lab4_layout_and_is_deterministic(tmp_path):
    kw = dict(seed=3, train_videos=2, train_video_len=8, val_videos=1, test_videos=2, sequence_len=5)
    a, b = generate(tmp_path / "a", **kw), generate(tmp_path / "b", **kw)
    assert len(list((a / "train/train_img").glob("*.png"))) == 16
    assert len(list((a / "train/train_label").glob("*.png"))) == 16
    assert len(list((a / "val/val_img").glob("*.png"))) == 5
    for i in range(2):
        assert [p.name for p in (a / f"test/test_img/{i}").iterdir()] == ["frame0.png"]
        assert len(list((a / f"test/test_label/{i}").glob("*.png"))) == 5
        assert len(list((a / f"test/test_gt/{i}").glob("*.png"))) == 5
    digest = lambda root: [hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))]
    assert digest(a) == digest(b)
    c = generate(tmp_path / "c", **{**kw, "seed": 4})
    assert digest(a) != digest(c)


def test_parallel_runs_of_a_sweep_generate_one_set(tmp_path):
    """Two runs of a joblib sweep (loky workers) that find no data both generate it, each with a process pool: one
    set results, equal to a set made alone (before: a spawned child could not set loky's start method)."""
    joblib = pytest.importorskip("joblib")
    kw = dict(seed=3, train_videos=2, train_video_len=8, val_videos=1, test_videos=2, sequence_len=5, workers=2)
    roots = joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(generate)(tmp_path / "set", **kw) for _ in "ab")
    assert roots == [tmp_path / "set"] * 2 and [p.name for p in tmp_path.iterdir()] == ["set"]
    alone = generate(tmp_path / "alone", **kw)
    digest = lambda root: [hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.png"))]
    assert digest(tmp_path / "set") == digest(alone)


def test_synthetic_frame_0_shows_the_figure_and_labels_are_drawn_on_black(tmp_path):
    root = generate(
        tmp_path / "s", seed=1, train_videos=1, train_video_len=2, val_videos=1, test_videos=1, sequence_len=2
    )
    label = np.asarray(Image.open(root / "train/train_label/frame0.png"))
    frame = np.asarray(Image.open(root / "train/train_img/frame0.png")).astype(int)
    assert (label.sum(-1) == 0).mean() > 0.7  # mostly black background
    drawn = label.sum(-1) > 0
    background = np.median(frame[~drawn].reshape(-1, 3), axis=0)
    assert np.abs(frame[drawn] - background).sum(-1).mean() > 20  # the figure differs from the background


def test_test_split_reads_every_sequence_found(tiny_root):
    dm = LAB4DataModule(str(tiny_root), train_vi_len=6, val_vi_len=12)
    dm.setup("test")
    assert len(dm.test_set) == 2
    item = dm.test_set[1]
    assert item["id"] == 1 and item["first_frame"].shape == (1, 3, 32, 64)
    assert item["poses"].shape == (12, 3, 32, 64) and item["truth"].shape == (12, 3, 32, 64)
    assert torch.equal(item["first_frame"][0], item["truth"][0])


SMALL_SET = dict(seed=0, train_videos=1, train_video_len=8, val_videos=1, test_videos=1, sequence_len=5)


def test_prepare_data_generates_a_missing_synthetic_set_only_where_generated_sets_live(tmp_path):
    sets, elsewhere = tmp_path / "data", tmp_path / "LAB4_Datset"
    dm = LAB4DataModule(str(sets / "made"), train_vi_len=4, val_vi_len=5, synthetic=SMALL_SET, generated_sets=str(sets))
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 2 and (sets / "made/test/test_gt/0/frame4.png").exists()
    typo = LAB4DataModule(str(elsewhere), synthetic=SMALL_SET, generated_sets=str(sets))
    typo.prepare_data()
    with pytest.raises(
        UserError,
        match=rf"^data.root {elsewhere} does not exist: check the path .* synthetic sets are "
        rf"generated only under paths.data_dir \({sets}\)",
    ):
        typo.setup("fit")
    assert not elsewhere.exists()


def test_a_typed_root_that_does_not_exist_is_an_error_and_creates_nothing(tmp_path):
    """`python -m cvae_video.train data.root=<a typo>` (data=lab4 left out): an error naming the path, no set made."""
    typo = tmp_path / "LAB4_Datset"
    result = subprocess.run(
        [sys.executable, "-m", "cvae_video.train", f"data.root={typo}", f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: data.root {typo} does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # neither a data set nor a run folder


def test_an_existing_folder_of_the_course_layout_is_read_as_it_is(tiny_root, tmp_path):
    """data.root=<an existing LAB4 folder> with the default data=synthetic reads that folder, generating nothing."""
    dm = LAB4DataModule(
        str(tiny_root), train_vi_len=6, val_vi_len=12, synthetic=SMALL_SET, generated_sets=str(tmp_path)
    )
    before = sorted(p.name for p in tiny_root.iterdir())
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_set) == 8 and sorted(p.name for p in tiny_root.iterdir()) == before


def test_prepare_data_cli_makes_the_configured_set_once_and_names_a_missing_one(tmp_path, capsys):
    """`python -m cvae_video.prepare_data` composes the training config: it generates the set its overrides name,
    leaves an existing one untouched, and a missing folder that is not synthetic is a one-line error."""
    root = tmp_path / "set"
    sizes = [
        f"data.synthetic.{k}={v}"
        for k, v in dict(train_videos=1, train_video_len=8, test_videos=1, sequence_len=5).items()
    ]
    prepare_data.main([f"data.root={root}", f"paths.data_dir={tmp_path}", *sizes])
    assert capsys.readouterr().out.strip() == str(root) and (root / "test/test_gt/0/frame4.png").is_file()
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*.png")}
    prepare_data.main([f"data.root={root}"])  # the default sizes: an existing set is not drawn again
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*.png")} == before
    with pytest.raises(SystemExit, match=rf"^error: data.root {tmp_path / 'none'} does not exist"):
        prepare_data.main(["data=lab4", f"data.root={tmp_path / 'none'}"])
    with pytest.raises(SystemExit, match=r"^error: data=nope: data has no option 'nope'; choose one of checkpoint, "):
        prepare_data.main(["data=nope"])


def test_a_synthetic_set_records_the_ceiling_of_its_clean_render(tiny_root):
    """ceiling.json holds, per validation and test sequence, the PSNR of the render before the camera's flicker
    against the saved frames: recomputed here from the PNGs on disk with the package's torch PSNR."""
    from cvae_video.data import performer
    from cvae_video.data.synthetic import SPLITS, read_ceiling
    from cvae_video.metrics import psnr_per_frame

    ceiling = json.loads((tiny_root / "ceiling.json").read_text())
    assert sorted(ceiling["val"]) == ["0"] and sorted(ceiling["test"]) == ["0", "1"]
    rng = np.random.default_rng([TINY["seed"], SPLITS["test"], 1])
    clean = [np.asarray(c) for _, _, c in performer.draw_video(rng, TINY["sequence_len"], (32, 64))]
    saved = [np.asarray(Image.open(tiny_root / f"test/test_gt/1/frame{k}.png")) for k in range(len(clean))]
    to_video = lambda frames: torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2)[None].float() / 255
    psnr = psnr_per_frame(to_video(clean), to_video(saved))[0]  # (T,)
    assert ceiling["test"]["1"]["psnr_mean"] == pytest.approx(psnr[1:].mean().item(), abs=1e-3)
    assert 35 < ceiling["test"]["1"]["psnr_mean"] < 50  # a flicker of a few grey levels
    value, line = read_ceiling(tiny_root, "test")
    assert value["psnr_mean"] == pytest.approx(np.mean([v["psnr_mean"] for v in ceiling["test"].values()]))
    assert line.startswith("the clean render, the ceiling (test, 2 whole sequence(s)): ")
    assert read_ceiling(tiny_root.parent, "val")[0] is None  # a folder without one (the course's data) says so


def test_prepare_data_adds_the_ceiling_to_a_set_generated_before_it(tmp_path):
    """A set of an older version (no ceiling.json) gets the same file a new generation writes, and only when its
    frames are those its settings draw."""
    sets = tmp_path / "data"
    root = generate(sets / "set", **SMALL_SET)
    written = json.loads((root / "ceiling.json").read_text())
    (root / "ceiling.json").unlink()
    LAB4DataModule(str(root), synthetic={**SMALL_SET, "seed": 1}, generated_sets=str(sets)).prepare_data()
    assert not (root / "ceiling.json").exists()  # other settings than the set's: nothing written
    LAB4DataModule(str(root), synthetic=SMALL_SET, generated_sets=str(sets)).prepare_data()
    assert json.loads((root / "ceiling.json").read_text()) == written


def test_the_door_variant_is_the_default_set_but_for_a_door_that_opens_at_random(tmp_path):
    settings = dict(TINY, train_videos=1, train_video_len=300, test_videos=1)
    plain = generate(tmp_path / "plain", **settings)
    door = generate(tmp_path / "door", scene="performer_door", **settings)
    roots = {"plain": plain, "door": door}
    frames = {name: lab4.read_sequence_split(root, "train", 32, 64) for name, root in roots.items()}
    torch.testing.assert_close(frames["door"][1], frames["plain"][1])  # the same poses
    changed = (frames["door"][0] != frames["plain"][0]).flatten(1).any(1)  # (300,) frames where the door is open
    assert 0 < changed.sum() < 300 and (changed[1:] != changed[:-1]).sum() >= 1  # it opens or closes, not always
    where = (frames["door"][0] != frames["plain"][0]).any(1).any(0)  # (H, W): every changed pixel is the door's
    rows, cols = where.nonzero(as_tuple=True)
    assert rows.min() >= 3 and rows.max() <= 18 and cols.min() >= 47 and cols.max() <= 55
    assert json.loads((door / "ceiling.json").read_text())["val"]["0"]["psnr_mean"] > 35
