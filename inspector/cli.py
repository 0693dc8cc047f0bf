"""Placeholder: the command line."""
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:  # replaced shortly
    return 0
