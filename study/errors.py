"""The errors a user is told in one line (exit 2): bad input, never a bug of the service."""

from __future__ import annotations

EXIT_BAD_INPUT = 2
EXIT_NO_SPACE = 3  # a disk filled up mid-study; `--resume` continues once there is space


class ConfigError(ValueError):
    """Bad user input: the message is one line naming the problem and the allowed values."""


class BadInput(Exception):
    """A command's arguments that cannot be used (a store that does not exist, a plot path)."""


class NoStudyFound(LookupError):
    """The store holds no finished study matching the request."""
