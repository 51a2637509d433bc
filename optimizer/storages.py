"""Storages a campaign directory can be kept in (see :class:`optimizer.storage.Storage`).

The storage types load on first use, so listing the names costs nothing. A campaign directory holds the
journal today (:data:`CAMPAIGN_STORAGE`); a study does not choose its storage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from optimizer.registry import Registry

if TYPE_CHECKING:
    from optimizer.storage import Storage

#: The storage every campaign directory is written and read with (its format is the journal's).
CAMPAIGN_STORAGE = "journal"

STORAGES: Registry[type[Storage]] = Registry(
    "storage",
    {
        "journal": "optimizer.storage:JournalStorage",
    },
)

__all__ = ["CAMPAIGN_STORAGE", "STORAGES"]
