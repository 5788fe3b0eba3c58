import os
import stat
import subprocess
import sys

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
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind


def test_completed_write_replaces_the_file(tmp_path):
    target = tmp_path / "sub" / "a.bin"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600)])
def test_written_files_take_the_mode_the_umask_gives(tmp_path, umask, mode):
    code = "import sys; from cvae_video.atomic import atomic_open\nwith atomic_open(sys.argv[1]) as f: f.write('id,0')"
    target = tmp_path / "submission.csv"
    subprocess.run([sys.executable, "-c", code, str(target)], check=True, preexec_fn=lambda: os.umask(umask))
    assert stat.S_IMODE(target.stat().st_mode) == mode
