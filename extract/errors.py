"""Errors that mark one clip as failed: the run records them and goes on (anything else is a bug and stops it)."""
from __future__ import annotations

import os


class ClipError(Exception):
    """A clip's input could not be used. `path` names the file at fault, `reason` says what is wrong."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)


class MediaError(ClipError):
    """A media file is empty, truncated or cannot be decoded."""


class NoAudioError(MediaError):
    """The media file has no audio track: audio features of the clip are missing (never zero-filled)."""


class FeatureFileError(ClipError):
    """A shipped feature file (CSV) is malformed; the message names the file and the line."""
