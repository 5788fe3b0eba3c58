"""The command line of the Hydra entry points, checked before torch loads: `--help`, and a command line that does
not compose (an unknown option or key, a required value left out) answered in one line.

Each entry point calls `check_command_line` first thing under `if __name__ == "__main__"`, then runs its
`@hydra.main` task. It imports hydra and omegaconf only, so both answers come in about a second. Hydra's own help
stays at `--hydra-help`; `--cfg job` prints the composed config.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONF_DIR = Path(__file__).resolve().parent / "conf"
HYDRA_FLAGS = (
    "--cfg",
    "-c",
    "--info",
    "-i",
    "--hydra-help",
    "--shell-completion",
    "-sc",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--resolve",
    "--package",
    "-p",
    "--experimental-rerun",
)


@dataclass(frozen=True)
class EntryPoint:
    """What `--help` says of one entry point, and the groups that belong to training alone (refused elsewhere)."""

    module: str  # cvae_video.train
    config_name: str  # its primary config in conf/
    about: str  # one paragraph: what it does and writes
    groups: tuple[str, ...]
    examples: tuple[str, ...]
    refused_groups: tuple[str, ...] = ()


TRAINING_GROUPS = (
    "model",
    "kl",
    "tfr",
    "optim",
    "lr",
    "trainer",
    "logger",
    "callbacks",
    "experiment",
    "arm",
    "hparams_search",
    "debug",
)


def options(group: str) -> list[str]:
    """The options of a config group: the yaml files of conf/<group>/."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def defaults(config_name: str) -> dict[str, str]:
    """{group: option} of a primary config's defaults list."""
    chosen = {}
    for entry in OmegaConf.load(CONF_DIR / f"{config_name}.yaml").get("defaults", []):
        if not isinstance(entry, str):
            for group, option in entry.items():
                chosen[group.removeprefix("optional ").removeprefix("override /")] = option
    return chosen


def help_text(entry: EntryPoint) -> str:
    chosen = defaults(entry.config_name)
    rows = []
    for group in entry.groups:
        default = chosen.get(group)
        rows.append(f"  {group:15s} {', '.join(options(group))}" + (f"   (default: {default})" if default else ""))
    examples = "\n".join(f"  python -m {entry.module} {e}" for e in entry.examples)
    return (
        f"python -m {entry.module} [group=option ...] [key=value ...]\n\n{entry.about}\n\n"
        f"config groups (group=option):\n" + "\n".join(rows) + f"\n\nexamples:\n{examples}\n\n"
        f"--cfg job prints the composed config; --hydra-help is Hydra's own help; the README has the rest."
    )


def one_line(err: Exception, overrides: list[str], entry: EntryPoint) -> str:
    """Hydra's composition error as one line that names the override and the fix."""
    text = str(err)
    if isinstance(err, MissingConfigException):
        found = re.search(r"Could not find '([^/']+)/([^']+)'", text)
        if found and (CONF_DIR / found.group(1)).is_dir():
            group, option = found.groups()
            known = options(group)
            close = difflib.get_close_matches(option.lower(), known, n=1, cutoff=0.6)
            hint = f" (did you mean {group}={close[0]}?)" if close else ""
            return f"{group}={option}: {group} has no option {option!r}; choose one of {', '.join(known)}{hint}"
    found = re.match(r"Could not override '([^']+)'", text)
    if found:
        key = found.group(1)
        typed = next((o for o in overrides if o.split("=", 1)[0] == key), key)
        if key.split(".")[0] in entry.refused_groups:
            return refused(typed, entry)
        return (
            f"{typed}: {key} is not a key of the {entry.config_name} config (a typo? `--cfg job` lists the keys; "
            f"+{typed} would add a new one)"
        )
    return " ".join(text.split("Config search path")[0].split())


def refused(override: str, entry: EntryPoint) -> str:
    return (
        f"{override}: {entry.module} takes no {override.lstrip('+~').split('=')[0].split('.')[0]} option: "
        f"the model and its training come from the checkpoint"
    )


def missing_keys(node: DictConfig, prefix: str = "") -> list[str]:
    """The dotted keys whose value is `???`, found without resolving any interpolation (no resolver is loaded)."""
    missing = []
    for key in node.keys():
        child = node._get_node(key)
        if OmegaConf.is_missing(node, key):
            missing.append(f"{prefix}{key}")
        elif isinstance(child, DictConfig):
            missing += missing_keys(child, f"{prefix}{key}.")
    return missing


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """Command lines that together use every value of a sweep (`kl=none,monotonic seed=1,2`: the first job, then each
    other value of each swept key in turn); a sweep whose values are not known before it runs (`glob(...)`) is
    left out."""
    fixed, swept = [], {}
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        try:
            swept[override.get_key_element()] = list(override.sweep_string_iterator())
        except HydraException:
            pass
    first = {key: values[0] for key, values in swept.items()}
    jobs = [fixed + [f"{k}={v}" for k, v in first.items()]]
    for key, values in swept.items():
        jobs += [fixed + [f"{k}={value if k == key else v}" for k, v in first.items()] for value in values[1:]]
    return jobs


def check_command_line(entry: EntryPoint, argv: list[str] | None = None) -> None:
    """Answer `--help`/`-h` and exit; else compose the command line once (a sweep's: its first job's) and exit with
    `error: ...` (status 1) if it does not compose or leaves a required value (`???`) unset. Hydra's own flags
    (`--cfg`, `--info`, ...) go to Hydra as they are."""
    argv = sys.argv[1:] if argv is None else argv
    if "--help" in argv or "-h" in argv:
        print(help_text(entry))
        raise SystemExit(0)
    if any(a.split("=")[0] in HYDRA_FLAGS for a in argv):
        return
    overrides = [a for a in argv if not a.startswith("-")]
    for override in overrides:
        if override.startswith("+") and override[1:].split("=")[0].split(".")[0] in entry.refused_groups:
            raise SystemExit(f"error: {refused(override, entry)}")
    jobs = sweep_jobs(overrides) if "-m" in argv or "--multirun" in argv else [overrides]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        for job in jobs:
            check_composes(entry, job)


def check_composes(entry: EntryPoint, overrides: list[str]) -> None:
    try:
        cfg = compose(config_name=entry.config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise SystemExit(f"error: {one_line(err, overrides, entry)}") from None
    missing = sorted(missing_keys(cfg))
    if missing:
        hint = " (the course's data: data=lab4 data.root=/path/to/LAB4_Dataset)" if "data.root" in missing else ""
        raise SystemExit(f"error: {missing[0]} is required: give {missing[0]}=...{hint}")
