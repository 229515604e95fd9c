"""Exceptions of the search package."""


class SearchError(ValueError):
    """A bad search input (candidate string, pin, budget, proxy, hardware axis); the message names it."""
