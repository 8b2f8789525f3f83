"""The package version (one place: the package, events and pyproject.toml's version agree)."""
__version__ = "0.1.0"
