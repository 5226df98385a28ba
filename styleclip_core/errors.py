"""Errors that tell the user which file, what was expected and what was found."""
from __future__ import annotations

import os


class CheckpointError(ValueError):
    def __init__(self, path, expected: str, found: str):
        self.path, self.expected, self.found = str(path), expected, found
        super().__init__(f"{os.path.basename(self.path)}: expected {expected}, found {found} (file: {self.path})")
