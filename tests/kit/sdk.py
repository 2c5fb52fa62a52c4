"""Where the waldur-api-client lines the contract tests run against are installed."""

import sys
from pathlib import Path


def sdk_path_for(version: str) -> Path | None:
    """Where `make install` put an 8.0.x SDK; None for the dev extra's own 8.1 line."""
    if version.startswith("8.1"):
        return None
    path = Path(sys.prefix) / f"sdk-{version}"
    assert (path / "waldur_api_client").is_dir(), f"make install puts SDK {version} in {path}"
    return path
