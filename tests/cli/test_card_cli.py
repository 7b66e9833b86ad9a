"""What a first version needs, said at registration, and a card carried forward to the next
version with `models card --from`."""

from __future__ import annotations

import json
from pathlib import Path

import joblib  # type: ignore[import-untyped]

from medops.registry.schemas import VersionOut
from tests.helpers import model_data
from tests.helpers.cli import init_with_people, log_in
from tests.helpers.cli_runner import Cli


def test_registration_warns_and_a_card_is_copied_forward(cli: Cli, tmp_path: Path) -> None:
    """A version registered without training data or demographics is told, at registration,
    that its card can never be complete and what else promotion needs; with them, only the next
    steps; `card --from 1` gives version 2 every team field of version 1's card."""
    init_with_people(cli, [("dana", "data_scientist", "Dana"), ("cora", "clinician", "Cora")])
    log_in(cli, "dana")
    cli.ok("models", "create", "risk")
    model_file, sample = tmp_path / "model.joblib", tmp_path / "train.csv"
    joblib.dump(model_data.pipeline(), model_file)
    model_data.frames()[0].to_csv(sample, index=False)
    bare = cli.ok("models", "register", "risk", str(model_file), "--sample", str(sample))
    said = " ".join(bare.out.split())  # as read, whatever the terminal's wrapping
    assert "warning: no training data recorded" in said
    assert "--training-data NAME@VERSION" in said
    assert "warning: no demographic attribute" in said
    assert "before risk/1 can be promoted" in said
    joblib.dump(model_data.pipeline(2.0), model_file)
    second = VersionOut.model_validate(
        cli.ok(
            "models", "register", "risk", str(model_file), "--sample", str(sample),
            "--training-data", "file:///data/train.csv", "--demographic", "sex", "--json",
        ).json()
    )  # fmt: skip
    assert len(second.warnings) == 1
    assert second.warnings[0].startswith("before risk/2 can be promoted")
    log_in(cli, "cora")
    card = tmp_path / "card.json"
    card.write_text(json.dumps(model_data.CARD))
    cli.ok("models", "card", "risk/1", "--set", str(card))
    copied = cli.ok("models", "card", "risk/2", "--from", "1", "--format", "json").json()
    team = {
        row["key"]: row["value"]
        for section in copied["sections"]
        for row in section["fields"]
        if row["source"] == "team" and row["value"]
    }
    assert team == {k: v for k, v in model_data.CARD.items() if v}
    missing = copied["completeness"]["missing"]
    assert not [m for m in missing if m.split(".")[1] in model_data.CARD]
