"""The error raised when a dataset cannot be found, read or trusted."""

from __future__ import annotations

__all__ = ["DataError"]


class DataError(ValueError):
    """A dataset file is missing, corrupt or inconsistent.

    The message names the file (or dataset) and says what is wrong and how to
    fix it. Being a :class:`ValueError`, it is caught by ``except ValueError``.

    Examples
    --------
    >>> from chainrule.data import DataError
    >>> issubclass(DataError, ValueError)
    True
    """
