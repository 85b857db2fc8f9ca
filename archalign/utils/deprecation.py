"""Keyword names that changed, kept working for one release.

Issue 28 settled one vocabulary (scipy's and scikit-learn's): ``n_jobs``, ``n_clusters``,
``method=`` for the linkage, ``strategy=`` for a shortlist's choice. The names they
replace keep working for one release through :func:`renamed_keywords`, so that a
caller's script warns instead of breaking.
"""
from __future__ import annotations

import functools
import warnings

from archalign.utils.errors import UsageError

__all__ = ["renamed_keywords"]


def renamed_keywords(**old_to_new: str):
    """Accept each keyword ``old`` as ``old_to_new[old]``, with one FutureWarning per
    call that names every old keyword used.

    The wrapped function keeps its signature (``inspect.signature`` and ``help()`` show
    the new names only). Giving both names of one keyword is refused (UsageError).
    """
    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            used = [old for old in old_to_new if old in kwargs]
            if used:
                for old in used:
                    new = old_to_new[old]
                    if new in kwargs:
                        raise UsageError(f"{func.__qualname__}: give {new}= alone ({old}= is "
                                         f"its old name)")
                    kwargs[new] = kwargs.pop(old)
                renames = ", ".join(f"{old}= is now {old_to_new[old]}=" for old in used)
                # FutureWarning, as scikit-learn does: Python shows it to end users,
                # where a DeprecationWarning would be hidden outside __main__
                plural = "s go" if len(used) > 1 else " goes"
                warnings.warn(f"{func.__qualname__}: {renames} (the old name{plural} in the "
                              f"next release)", FutureWarning, stacklevel=2)
            return func(*args, **kwargs)

        return wrapper

    return decorate
