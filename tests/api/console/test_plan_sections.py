"""The model page's change-control sections: the plan in force with its signers, the
retraining history, and each candidate's comparison with the champion."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.helpers.plans import active_plan, candidate, eval_file, evaluate, spec
from tests.helpers.registry import DEPLOYMENT, NAME

pytestmark = pytest.mark.usefixtures("deployed")


def test_the_model_page_shows_the_plan_history_and_comparisons(
    http: httpx.Client, people: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    """Before a plan the page says every version takes the full approval path; after one,
    an outside-plan candidate and its stopped rollout appear with the reasons and the
    DeLong row of its comparison."""
    before = http.get(f"/models/{NAME}", headers=people["clin"])
    assert before.status_code == 200
    assert "No active plan" in before.text
    active_plan(http, people, spec(tmp_path))
    version = candidate(http, people, 50.0)
    evaluate(http, people["ds"], version, eval_file(tmp_path))
    started = http.post(
        f"/api/v1/models/{NAME}/rollouts",
        json={"version": version, "deployment": DEPLOYMENT},
        headers=people["ds"],
    )
    assert started.json()["state"] == "stopped"
    page = http.get(f"/models/{NAME}", headers=people["clin"]).text
    assert "Change-control plan" in page
    assert "(clinician)" in page
    assert "(ml_engineer)" in page
    assert "Retraining history" in page
    assert ">stopped<" in page
    assert "outside plan" in page
    assert "delong" in page
    assert "logisticregression__C=50.0 is not in [0.05, 5]" in page
