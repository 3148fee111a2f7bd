"""Reading the meta level's saved files (a pre-trained network's or rule's): one error for a missing or unreadable file."""

import os
import pathlib
from typing import Any

import torch as th


def load_saved(path: pathlib.Path, what: str) -> Any:
    """
    :param path: The file
    :param what: What it should hold, for the errors (e.g. ``"meta controller"``)
    :return: its contents (``torch.load`` with ``weights_only=True``: plain data and tensors only)
    :raises FileNotFoundError: if there is no file
    :raises ValueError: if ``torch`` cannot read it
    """
    if not path.exists():
        raise FileNotFoundError(f"No {what} file at {os.fspath(path)!r}")
    try:
        return th.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{os.fspath(path)!r} is not a saved {what}: {error}") from error
