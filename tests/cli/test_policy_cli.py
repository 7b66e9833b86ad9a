"""`medops models policy-change` end to end through the CLI: a loosening refused by
`models policy --set` with the command to use, proposed, signed by an engineer and a
clinician, applied; every command answers --json."""

from __future__ import annotations

import json
from pathlib import Path

from medops.registry.schemas import PolicyChangeOut, PromotionPolicy
from tests.helpers.cli import USER_PW, init_with_people, log_in
from tests.helpers.cli_runner import Cli


def test_a_loosening_is_proposed_signed_by_two_people_and_applied(cli: Cli, tmp_path: Path) -> None:
    """`models policy --set` refuses a lower AUROC floor in one line naming
    `policy-change propose`; the proposal waits for a clinician; the clinician's signature
    applies it; list and show answer --json."""
    init_with_people(
        cli, [("eli", "ml_engineer", "Eli Whitney"), ("cora", "clinician", "Dr. Cora Lee")]
    )
    log_in(cli, "eli")
    cli.ok("models", "create", "sepsis", "--json")
    lower = tmp_path / "lower.json"
    lower.write_text(json.dumps({"min_auroc": 0.65}))
    refused = cli("models", "policy", "sepsis", "--set", str(lower))
    assert refused.code != 0
    assert len(refused.err.strip().splitlines()) == 1
    assert "medops models policy-change propose sepsis" in refused.err
    proposed = PolicyChangeOut.model_validate(
        cli.ok(
            "models",
            "policy-change",
            "propose",
            "sepsis",
            str(lower),
            "--reason",
            "the intended use accepts 0.65",
            "--json",
        ).json()
    )
    assert proposed.status == "pending"
    signed = cli.ok(
        "models",
        "policy-change",
        "sign",
        "sepsis",
        proposed.id,
        "--password-stdin",
        "--json",
        stdin=USER_PW + "\n",
    )
    assert PolicyChangeOut.model_validate(signed.json()).needs == ["a signature by a clinician"]
    log_in(cli, "cora")
    applied = cli.ok(
        "models",
        "policy-change",
        "sign",
        "sepsis",
        proposed.id,
        "--password-stdin",
        stdin=USER_PW + "\n",
    )
    assert "applied policy change" in applied.out
    shown = PolicyChangeOut.model_validate(
        cli.ok("models", "policy-change", "show", "sepsis", proposed.id, "--json").json()
    )
    assert shown.status == "applied"
    listed = cli.ok("models", "policy-change", "list", "sepsis", "--json").json()
    assert [PolicyChangeOut.model_validate(c).id for c in listed] == [proposed.id]
    policy = PromotionPolicy.model_validate(cli.ok("models", "policy", "sepsis", "--json").json())
    assert policy.min_auroc == 0.65
