"""The ``config.py`` of a generated package: its ``Config``, read from the environment.

nbharden (``emit``) writes it with its own docstring, each hole below replaced by its value (and the holes'
definitions dropped), the notebook's fields (and the check that its input files exist) in ``Config``, and the
imports those need; ``default_output_dir`` only where a field's default is the output folder.
"""

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parents[2]
# Holes: where the notebook's folder is (from the package), how Config reads the environment.
NOTEBOOK_FOLDER = PROJECT_DIR
SETTINGS = SettingsConfigDict(env_prefix="PIPELINE_", env_file=".env", extra="ignore")
NOTEBOOK_DIR = NOTEBOOK_FOLDER
"""Folder of the source notebook when the package was generated."""


def default_data_dir() -> Path:
    """The notebook's folder when the package runs from its source tree; else the current folder."""
    if (PROJECT_DIR / "pyproject.toml").is_file() and NOTEBOOK_DIR.is_dir():
        return NOTEBOOK_DIR
    return Path.cwd()


def default_output_dir() -> Path:
    """``outputs`` in the source tree, else in the current folder (an installed package)."""
    source_tree = (PROJECT_DIR / "pyproject.toml").is_file()
    return (PROJECT_DIR if source_tree else Path.cwd()) / "outputs"


class Config(BaseSettings):
    """Settings of the pipeline; defaults reproduce the notebook."""

    model_config = SETTINGS
