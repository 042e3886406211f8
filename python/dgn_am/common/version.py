"""The package version, in the one place every layer may read it (manifests record it; --version prints it)."""

__version__ = "0.1.0"
