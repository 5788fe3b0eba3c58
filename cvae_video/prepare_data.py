"""Make the data set a training run would read, if it is missing: `python -m cvae_video.prepare_data [overrides]`.

It takes the same overrides as `cvae_video.train` (`data=synthetic_many`, `data.root=...`) and runs the data
module's `prepare_data`: a synthetic set is generated where its folder does not exist yet and lies inside
`paths.data_dir`; any set is then checked to be there. Scripts that start several runs at once call it first, so
that the runs do not each draw the set. It prints the data folder.
"""

from __future__ import annotations

import sys

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from hydra.utils import instantiate

from cvae_video import config  # noqa: F401  (registers the config resolvers)
from cvae_video.cli import CONF_DIR, EntryPoint, check_command_line
from cvae_video.errors import UserError, user_errors

ENTRY = EntryPoint(
    "cvae_video.prepare_data",
    "train",
    "Make the data set that `python -m cvae_video.train` with the same overrides would read, if it is missing (a\n"
    "synthetic set, inside paths.data_dir), check that it is there, and print its folder.",
    ("data", "paths"),
    ("", "data=synthetic_many", "paths.data_dir=/scratch/cvae_sets"),
)


@user_errors
def main(overrides: list[str] | None = None) -> None:
    overrides = sys.argv[1:] if overrides is None else overrides
    check_command_line(ENTRY, overrides)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = compose(config_name="train", overrides=overrides)
    except HydraException as err:  # an unknown group option or key: Hydra's message, on one line
        raise UserError(" ".join(str(err).split("Config search path")[0].split())) from None
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.check_root()
    print(datamodule.root)


if __name__ == "__main__":
    main()
