"""Exceptions of the search package."""


class SearchError(ValueError):
    """A bad search input (candidate string, pin, budget, proxy, hardware axis); the message names it."""


def positive(value, where: str, kind=float, what: str = ""):
    """``value`` as a positive ``kind`` (int or float), else a SearchError naming ``where``."""
    what = what or ("a positive integer" if kind is int else "a positive number")
    try:
        x = kind(value)
    except (TypeError, ValueError):
        raise SearchError(f"{where}: expected {what}") from None
    if not x > 0:
        raise SearchError(f"{where}: expected {what}")
    return x
