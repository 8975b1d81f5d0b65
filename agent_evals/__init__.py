"""agent-evals: put every prompt change behind an eval gate."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
