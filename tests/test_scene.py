"""The default synthetic set is shaped like the course's: one performer, one room, a fixed camera, flicker."""

import numpy as np
import pytest
from PIL import Image

from cvae_video.data import lab4
from cvae_video.data.performer import COURSE_LOOK, look_of
from cvae_video.data.synthetic import generate
from cvae_video.errors import UserError


@pytest.fixture(scope="module")
def course_like(tmp_path_factory):
    """Two training videos, a validation and a test sequence of 200 frames: enough motion to measure."""
    return generate(
        tmp_path_factory.mktemp("scene") / "set",
        seed=0,
        train_videos=2,
        train_video_len=200,
        test_videos=1,
        sequence_len=200,
    )


def frames(folder):
    return lab4.load_images(list(lab4.indexed_frames(folder).values()), 32, 64).float().numpy() / 255  # (T, 3, H, W)


def psnr(a, b):
    return 10 * np.log10(1 / ((a - b) ** 2).mean(axis=(1, 2, 3)))


def test_one_room_in_every_video_and_split(course_like):
    rooms = [np.median(frames(course_like / d), axis=0) for d in ("train/train_img", "val/val_img", "test/test_gt/0")]
    for room in rooms[1:]:  # the median frame of each video is the empty room: the same in all of them
        assert np.abs(room - rooms[0]).mean() < 4 / 255


def test_statistics_are_the_courses(course_like):
    val = frames(course_like / "val/val_img")
    room = np.median(val, axis=0)
    person = (np.abs(val - room).max(axis=1) > 0.06).mean(axis=(1, 2))  # the person and the shadow
    assert 0.02 < np.median(person) < 0.11
    copy_first = psnr(val[1:], val[:1]).mean()
    assert 15 < copy_first < 23  # the course: 18.4 (15.4-22.9)
    assert psnr(val[1:], val[:-1]).mean() > copy_first + 8  # motion is smooth
    flicker = np.abs(val[1:] - val[:-1])[:, :, :4, :4] * 255  # a corner of wall: the camera's flicker
    assert 0.5 < flicker.mean() < 6


def test_labels_are_openpose_limbs_on_black(course_like):
    label = np.asarray(Image.open(course_like / "train/train_label/frame0.png"))
    assert (label.sum(-1) == 0).mean() > 0.8
    assert len({tuple(c) for c in label.reshape(-1, 3) if c.max() == 255}) >= 3  # several limb colours


def test_another_look_is_another_performer_and_room_and_sizes_on_disk_are_free(tmp_path):
    kw = dict(seed=1, train_videos=1, train_video_len=4, test_videos=1, sequence_len=4)
    course = generate(tmp_path / "course", **kw)
    other = generate(tmp_path / "other", look=3, height=48, width=96, **kw)
    assert Image.open(other / "val/val_img/frame0.png").size == (96, 48)
    a, b = frames(course / "val/val_img"), frames(other / "val/val_img")  # loaded at 32 x 64 alike
    assert np.abs(a - b).mean() > 0.01 and look_of(3).shirt != COURSE_LOOK.shirt
    with pytest.raises(UserError, match="data.synthetic.scene"):
        generate(tmp_path / "x", scene="nope", **kw)


def test_default_data_folder_names_its_version(compose_train, tmp_path):
    default = compose_train([f"paths.output_dir={tmp_path}"]).data
    many = compose_train([f"paths.output_dir={tmp_path}", "data=synthetic_many"]).data
    assert default.root.endswith("performer_v1") and default.synthetic.scene == "performer"
    assert many.root.endswith("many_looks_v2") and many.synthetic.scene == "many_looks"
    assert default.synthetic.train_videos * default.synthetic.train_video_len == 23408
