"""The errors a user can fix, shared by ``archalign`` and ``neurn``.

Both command lines print a :class:`UserError` (and an ``OSError``) as one line and exit
with status 2; any other exception is a bug in our code and is shown as one, with its
traceback (:func:`archalign.utils.args.error_boundary`). So library code raises these
types for bad input, and the built-in ones only for what cannot be the user's doing.

Each also derives from the built-in a Python caller would expect (``ValueError``,
``KeyError``, ``ImportError``), so ``except ValueError`` keeps working::

    UserError
    ├── UsageError (ValueError): an argument, option or value that cannot work
    │   └── UnknownNameError (KeyError): a name not in a registry or a matrix
    ├── DataError (ValueError): a file, folder or dataset missing, damaged or unusable
    └── MissingExtraError (ImportError): an optional dependency is not installed
"""
from __future__ import annotations

__all__ = ["DataError", "MissingExtraError", "UnknownNameError", "UsageError", "UserError"]


class UserError(Exception):
    """An error the user can fix; its message says what is wrong and how to fix it."""


class UsageError(UserError, ValueError):
    """An argument, option or value that cannot work (a nonsense number, a conflicting
    combination, a file of the wrong kind)."""


class UnknownNameError(UsageError, KeyError):
    """A name that is not known: a model, domain, label or token."""

    def __str__(self) -> str:  # KeyError's own str() would quote the message
        return str(self.args[0]) if self.args else ""


class DataError(UserError, ValueError):
    """A file, folder or dataset that is missing, damaged or unusable as given."""


class MissingExtraError(UserError, ImportError):
    """An optional dependency that a feature needs is not installed."""
