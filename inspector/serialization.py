"""Placeholder: the cattrs converter."""
from typing import Any


def to_json(obj: Any) -> str:  # replaced shortly
    raise NotImplementedError


def from_json(text: str, cls: Any) -> Any:  # replaced shortly
    raise NotImplementedError
