import pytest

from cvae_video.atomic import atomic_open, atomic_path


def test_interrupted_write_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text('{"psnr_mean": 30.0}')
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write('{"psnr_m')
            raise RuntimeError("killed mid-write")
    assert target.read_text() == '{"psnr_mean": 30.0}'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]   # no temporary file left behind


def test_completed_write_replaces_the_file(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
