"""OmegaConf resolvers the configs use: `${project_root:}` is the folder that holds `conf/` and `outputs/`."""
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[1]
OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
