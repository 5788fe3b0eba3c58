"""Every command the README shows composes as written: each `python -m cvae_video.<entry> ...` line goes through the
entry point's own command-line check (real Hydra composition of its config, as a user's shell passes it), and each
`make <target>` names a target of the Makefile."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cvae_video import evaluate, predict, prepare_data, train
from cvae_video.cli import check_command_line

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = {
    "train": train.ENTRY,
    "evaluate": evaluate.ENTRY,
    "predict": predict.ENTRY,
    "prepare_data": prepare_data.ENTRY,
}


def readme_commands() -> list[str]:
    """The command lines of the README's bash blocks, continuation lines joined, comments cut."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    lines = " ".join(blocks).replace("\\\n", " ").splitlines()
    return [" ".join(shlex.split(line, comments=True)) for line in lines if line.strip()]


COMMANDS = readme_commands()
PYTHON = [c for c in COMMANDS if c.startswith("python -m cvae_video.")]


def test_the_readme_shows_commands_of_every_entry_point():
    shown = {c.split()[2].removeprefix("cvae_video.") for c in PYTHON}
    assert {"train", "evaluate", "predict", "report", "plots"} <= shown
    assert any(c.startswith("make demo") for c in COMMANDS) and any(c.startswith("make test") for c in COMMANDS)


@pytest.mark.parametrize("command", [c for c in PYTHON if c.split()[2].removeprefix("cvae_video.") in ENTRIES])
def test_each_readme_command_composes(command):
    words = shlex.split(command)
    entry, args = ENTRIES[words[2].removeprefix("cvae_video.")], words[3:]  # a sweep (-m): its first job
    if "--help" in args:
        with pytest.raises(SystemExit) as stopped:
            check_command_line(entry, args)
        assert stopped.value.code == 0
    else:
        check_command_line(entry, args)  # an error would exit with its one line


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.startswith("make ")])
def test_each_readme_make_target_exists(command):
    target = command.split()[1]
    assert re.search(rf"^{target}:", (ROOT / "Makefile").read_text(), flags=re.M), target
