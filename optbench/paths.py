"""Where optbench keeps what it can rebuild (generated datasets, compiled programs): the
platform's user cache folder, as platformdirs finds it (``~/.cache/optbench`` on Linux)."""

from __future__ import annotations

from pathlib import Path


def user_cache(*parts: str) -> Path:
    """``<user cache>/optbench/<parts>``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("optbench", appauthor=False), *parts)
