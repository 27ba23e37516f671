"""Unifocus: the time-and-attendance backend."""

__version__ = "0.1.0"
