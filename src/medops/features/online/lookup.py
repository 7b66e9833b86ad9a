"""The online lookup contract of ``features.schemas`` (:class:`OnlineLookup`) over a store."""

from __future__ import annotations

from collections.abc import Sequence

from medops.features.online.base import OnlineStore, entity_key
from medops.features.schemas import EntityKey, OnlineRow


class StoreLookup:
    """Answers ``read(view, keys, features)`` from an :class:`OnlineStore`: the latest row per
    key with its event and created time, only the features asked for (None where the store
    holds no row; a stale row is returned as is, the caller applies the TTL)."""

    def __init__(self, store: OnlineStore) -> None:
        self.store = store

    def read(
        self, view: str, keys: Sequence[EntityKey], features: Sequence[str]
    ) -> list[OnlineRow | None]:
        stored = self.store.read(view, [entity_key(k) for k in keys])
        out: list[OnlineRow | None] = []
        for key, row in zip(keys, stored, strict=True):
            if row is None:
                out.append(None)
                continue
            out.append(
                OnlineRow(
                    view=view,
                    key=tuple(key),
                    values={f: row.values.get(f) for f in features},
                    event_time=row.event,
                    created_time=row.created,
                )
            )
        return out
