"""The one canonical-JSON helper writes exactly the bytes the three copies it replaced wrote,
so no hash or signature made before it changes."""

from __future__ import annotations

import hashlib
import json
import random
import string
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from medops.audit.verify import CHECKPOINT_FIELDS, checkpoint_body
from medops.core.canonical import canonical_json, sha256_json, utc_text
from medops.registry.approvals import sha256_json as approvals_sha256_json

ALPHABET = string.printable + "éß漢\u2028\U0001f600"


def _value(rng: random.Random, depth: int = 0) -> Any:
    makers: list[Any] = [
        lambda: rng.randrange(-(10**12), 10**12),
        lambda: rng.uniform(-1e6, 1e6),
        lambda: "".join(rng.choices(ALPHABET, k=rng.randrange(8))),
        lambda: None,
        lambda: rng.random() < 0.5,
    ]
    if depth < 3:
        makers.append(lambda: [_value(rng, depth + 1) for _ in range(rng.randrange(4))])
        makers.append(
            lambda: {
                "".join(rng.choices(ALPHABET, k=rng.randrange(1, 6))): _value(rng, depth + 1)
                for _ in range(rng.randrange(5))
            }
        )
    return rng.choice(makers)()


@pytest.mark.parametrize("seed", range(5))
def test_canonical_json_and_its_hash_equal_the_form_they_replaced(seed: int) -> None:
    """Random nested values: the same text and SHA-256 as registry/approvals.py wrote, and
    checkpoint bodies the same ASCII-escaped bytes as audit/verify.py signed."""
    rng = random.Random(seed)
    for _ in range(300):
        value = _value(rng)
        old = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical_json(value) == old
        assert sha256_json(value) == hashlib.sha256(old.encode()).hexdigest()
        assert approvals_sha256_json(value) == sha256_json(value)
        body = {name: _value(rng, 3) for name in CHECKPOINT_FIELDS}
        assert (
            checkpoint_body(body)
            == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        )


def test_times_are_utc_with_microseconds_and_naive_times_are_refused() -> None:
    """The audit chain's time form, whatever zone a time is given in."""
    given = datetime(2026, 3, 29, 2, 30, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    assert utc_text(given) == "2026-03-29T00:30:00.000005Z"
    assert utc_text(given.astimezone(UTC)) == utc_text(given)
    with pytest.raises(ValueError, match="timezone-aware"):
        utc_text(datetime(2026, 1, 1))
