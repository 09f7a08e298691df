"""Cloud endpoints as data (providers.toml): base URL, the API key's variable, model ids,
cost fields to fill."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.errors import LlamalabError
from . import read

if TYPE_CHECKING:
    import pandas as pd


def providers() -> pd.DataFrame:
    """The providers as a DataFrame,
    one row each (`llamalab.connect(row.base_url, model, row.api_key_env)`)."""
    import pandas as pd

    return pd.DataFrame(read("providers.toml")["provider"])


def provider(name: str) -> dict:
    """One provider's entry."""
    for p in read("providers.toml")["provider"]:
        if p["name"] == name:
            return p
    known = ", ".join(p["name"] for p in read("providers.toml")["provider"])
    raise LlamalabError(f"No provider called {name!r}.", f"Known: {known}.")
