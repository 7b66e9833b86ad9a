"""`medops plans` end to end through the CLI: a plan for a model without a production
version must list its features; it is proposed, signed by an ML engineer and a clinician,
active; show, list, candidates, rollouts and tick answer --json and tables; errors are one
line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from medops.retraining.plan_schemas import PlanOut
from tests.helpers.cli import USER_PW, init_with_people, log_in
from tests.helpers.cli_runner import Cli


def _plan_file(folder: Path, features: list[str]) -> Path:
    data = b"age,label\n50,1\n"
    (folder / "eval.csv").write_bytes(data)
    plan = {
        "description": "Retraining of the sepsis score",
        "allowed": {"families": ["logistic_regression"]},
        "fixed": {"intended_use": "sepsis risk", "population": "adults", "features": features},
        "evaluation": {
            "fixed_set": {
                "path": str(folder / "eval.csv"),
                "sha256": hashlib.sha256(data).hexdigest(),
            },
            "label_column": "label",
        },
        "rollout": {"canary_steps": [{"percent": 10, "minutes": 60}]},
    }
    path = folder / "plan.json"
    path.write_text(json.dumps(plan))
    return path


def test_a_plan_is_created_signed_by_two_roles_and_shown(cli: Cli, tmp_path: Path) -> None:
    """Without features (and no production version) the plan is refused in one line; with
    them it is pending, then active after the engineer's and the clinician's signatures."""
    init_with_people(
        cli, [("eli", "ml_engineer", "Eli Whitney"), ("cora", "clinician", "Dr. Cora Lee")]
    )
    log_in(cli, "eli")
    cli.ok("models", "create", "sepsis", "--json")
    refused = cli("plans", "create", "sepsis", str(_plan_file(tmp_path, [])))
    assert refused.code != 0
    assert len(refused.err.strip().splitlines()) == 1
    assert "list them" in refused.err
    created = PlanOut.model_validate(
        cli.ok("plans", "create", "sepsis", str(_plan_file(tmp_path, ["age"])), "--json").json()
    )
    assert (created.number, created.status) == (1, "pending")
    signed = cli.ok("plans", "sign", "sepsis", "1", "--password-stdin", stdin=USER_PW + "\n")
    assert "still needs: a signature by a clinician" in signed.out
    log_in(cli, "cora")
    active = cli.ok(
        "plans", "sign", "sepsis", "1", "--password-stdin", "--json", stdin=USER_PW + "\n"
    )
    assert PlanOut.model_validate(active.json()).status == "active"
    shown = cli.ok("plans", "show", "sepsis").out
    assert "Dr. Cora Lee (clinician)" in " ".join(shown.split())
    listed = cli.ok("plans", "list", "sepsis", "--json").json()
    assert [p["status"] for p in listed] == ["active"]
    assert cli.ok("plans", "candidates", "sepsis", "--json").json() == []
    assert cli.ok("plans", "rollouts", "sepsis", "--json").json() == []
    log_in(cli, "eli")
    assert cli.ok("plans", "tick", "--json").json() == []
