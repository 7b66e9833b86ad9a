"""The online store in Redis: one hash per (view, entity key) holding the values (JSON), the
event time and the created time (microseconds), and a set per view of its keys (for counts
and deletes). The newer-wins rule runs inside Redis (a Lua script), so concurrent
materializations cannot move a value back in time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import redis

from medops.features.online.base import (
    StoredRow,
    decode_values,
    from_micros,
    newest_per_key,
    to_micros,
)

_UPSERT = """
local cur = redis.call('HMGET', KEYS[1], 'e', 'c', 'v')
if cur[1] then
  local e, c = tonumber(cur[1]), tonumber(cur[2])
  local ne, nc = tonumber(ARGV[2]), tonumber(ARGV[3])
  if e > ne or (e == ne and (c > nc or (c == nc and cur[3] == ARGV[1]))) then return 0 end
end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'e', ARGV[2], 'c', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
return 1
"""
_BATCH = 1000


class RedisOnlineStore:
    """The online store in Redis (``redis://host:port/db``); keys under ``namespace``."""

    def __init__(self, url: str, *, namespace: str = "medops") -> None:
        self.url = url
        self.namespace = namespace
        self._client: redis.Redis = redis.Redis.from_url(url)
        self._upsert: Any = self._client.register_script(_UPSERT)

    def _key(self, view: str, key: str) -> str:
        return f"{self.namespace}:fv:{view}:{key}"

    def _members(self, view: str) -> str:
        return f"{self.namespace}:fvkeys:{view}"

    def write(self, view: str, rows: Iterable[StoredRow]) -> int:
        written = 0
        newest = newest_per_key(rows)
        members = self._members(view)
        for start in range(0, len(newest), _BATCH):
            pipe = self._client.pipeline(transaction=False)
            for r in newest[start : start + _BATCH]:
                self._upsert(
                    keys=[self._key(view, r.key), members],
                    args=[r.encode(), to_micros(r.event), to_micros(r.created), r.key],
                    client=pipe,
                )
            written += sum(int(x) for x in pipe.execute())
        return written

    def read(self, view: str, keys: Sequence[str]) -> list[StoredRow | None]:
        if len(keys) == 1:
            found = [self._client.hmget(self._key(view, keys[0]), "v", "e", "c")]
        else:
            pipe = self._client.pipeline(transaction=False)
            for k in keys:
                pipe.hmget(self._key(view, k), "v", "e", "c")
            found = pipe.execute()
        out: list[StoredRow | None] = []
        for key, (vals, event, created) in zip(keys, found, strict=True):
            if vals is None or event is None or created is None:
                out.append(None)
            else:
                out.append(
                    StoredRow(
                        key, decode_values(vals), from_micros(int(event)), from_micros(int(created))
                    )
                )
        return out

    def delete_view(self, view: str) -> int:
        members = self._members(view)
        removed = 0
        keys: list[bytes] = list(self._client.sscan_iter(members, count=1000))
        for start in range(0, len(keys), _BATCH):
            chunk = keys[start : start + _BATCH]
            removed += int(self._client.delete(*(self._key(view, k.decode()) for k in chunk)))
        self._client.delete(members)
        return removed

    def count(self, view: str) -> int:
        return int(self._client.scard(self._members(view)))

    def close(self) -> None:
        self._client.close()
