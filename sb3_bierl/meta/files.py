"""Reading the meta level's saved files (a pre-trained network's or rule's): one check of kind, format and version."""

import os
import pathlib
from collections.abc import Mapping
from typing import Any

import torch as th


def load_saved(
    path: pathlib.Path, what: str, file_format: str, version: int, remedy: str, others: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """
    :param path: The file
    :param what: What it should hold, for the errors (e.g. ``"meta controller"``)
    :param file_format: The ``"format"`` entry such a file has
    :param version: The format version this release reads
    :param remedy: How to get a right file, ending the errors (e.g. ``"pre-train one with python -m ..."``)
    :param others: Other files' ``"format"`` -> what to say of them (e.g. a rule's file given for a network)
    :return: its contents (``torch.load`` with ``weights_only=True``: plain data and tensors only)
    :raises FileNotFoundError: if there is no file
    :raises ValueError: if ``torch`` cannot read it, it is another kind of file, or of another format version
    """
    if not path.exists():
        raise FileNotFoundError(f"No {what} file at {os.fspath(path)!r}")
    try:
        data = th.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{os.fspath(path)!r} is not a saved {what}: {error}") from error
    found = data.get("format") if isinstance(data, dict) else None
    others = others or {}
    if found in others:
        raise ValueError(f"{os.fspath(path)!r} is {others[found]}")
    if found != file_format:
        raise ValueError(f"{os.fspath(path)!r} is not a saved {what}: {remedy}")
    if data.get("version") != version:
        raise ValueError(
            f"{os.fspath(path)!r} is a {what} of format version {data.get('version')}, but this release reads "
            f"version {version}: {remedy}"
        )
    return data
