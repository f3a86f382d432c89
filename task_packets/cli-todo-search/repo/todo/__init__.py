"""A tiny to-do list for the terminal."""

__version__ = "0.4.0"
