"""Small descriptive statistics for lists of numbers."""

from .core import mean, median, mode

__all__ = ["mean", "median", "mode"]
