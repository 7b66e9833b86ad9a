"""A model's change-control sections in the console: the plan in force (what may change, the
floors, the protocol, who signed), the retraining history (each rollout and how it ended) and
each candidate's comparison with the champion. Read from the same services as the API; shown
to those who hold ``training:read``."""

from __future__ import annotations

from typing import Any

from medops.api.console.layout import badge, cell, definitions, section, table, when
from medops.context import Actor
from medops.core.permissions import Permission
from medops.core.svg import esc
from medops.retraining.plan_schemas import CandidateReport, PlanOut

STATES = {"promoted": "ok", "shadow": "warn", "canary": "warn", "aborted": "bad", "stopped": "bad"}


def _plan(plan: PlanOut | None) -> str:
    if plan is None:
        return "<p>No active plan: every new version takes the full approval path.</p>"
    spec = plan.spec
    items = [
        ("Plan", esc(f"{plan.number} (sha256 {plan.plan_hash[:16]})")),
        ("Description", esc(spec.description)),
        ("Allowed families", esc(", ".join(spec.allowed.families))),
        ("Hyperparameters", esc(", ".join(
            f"{k} {r.describe()}" for k, r in sorted(spec.allowed.hyperparameters.items())
        ) or "none may change")),
        ("Threshold", esc(f"{spec.allowed.threshold_low:g} to {spec.allowed.threshold_high:g}")),
        ("Fixed", esc(f"{len(spec.fixed.features)} features; intended use: "
                      f"{spec.fixed.intended_use}; population: {spec.fixed.population}")),
        ("Floors", esc(", ".join(f"{k} ≥ {v:g}" for k, v in sorted(spec.floors.minimum.items()))
                       or "none")),
        ("Subgroup limits", esc(", ".join(
            f"{s.attribute}: {s.metric} gap ≤ {s.max_gap:g}" for s in spec.subgroup_limits
        ) or "none")),
        ("Rollout", esc(f"shadow {spec.rollout.shadow_predictions} predictions, canary "
                        + " → ".join(f"{s.percent}%" for s in spec.rollout.canary_steps)
                        + "; aborts on " + ", ".join(spec.rollout.abort_verdicts))),
        ("Signed by", esc(", ".join(
            f"{s.printed_name} ({s.role}{'' if s.valid else ', NOT VALID'})"
            for s in plan.signatures
        ))),
    ]  # fmt: skip
    return definitions(items)


def _comparisons(reports: list[CandidateReport]) -> str:
    if not reports:
        return "<p>No candidate has been evaluated.</p>"
    parts = []
    for r in reports[:10]:
        verdict = badge("within plan", "ok") if r.within_plan else badge("outside plan", "bad")
        rows = [
            [cell(e.name), cell(c.metric), cell(c.test), cell(c.candidate), cell(c.champion),
             cell(f"{c.difference:+.4f}"),
             cell(None if c.ci_low is None or c.ci_high is None
                  else f"{c.ci_low:+.4f} to {c.ci_high:+.4f}"),
             cell(c.p_value)]
            for e in r.evaluations for c in e.comparisons
        ]  # fmt: skip
        reasons = "".join(f"<li>{esc(reason)}</li>" for reason in r.reasons)
        parts.append(
            f"<h3>v{r.candidate} against v{r.champion} under plan {r.plan} {verdict}</h3>"
            + table(
                ["set", "metric", "test", "candidate", "champion", "difference", "95% CI", "p"],
                rows,
                empty="No champion to compare with.",
            )
            + (f"<ul>{reasons}</ul>" if reasons else "")
        )
    return "".join(parts)


def plan_sections(services: Any, actor: Actor, name: str) -> str:
    """The plan, the retraining history and the candidate comparisons of a model (empty for
    a viewer without training:read)."""
    if not actor.can(Permission.TRAINING_READ):
        return ""
    rollouts = services.rollouts.all(name)
    history = [
        [cell(when(r.started_at)), cell(f"v{r.version}"), cell(r.deployment), cell(r.plan),
         badge(r.state, STATES.get(r.state)), cell(r.events[-1].detail if r.events else None)]
        for r in rollouts
    ]  # fmt: skip
    return (
        section("Change-control plan", _plan(services.plans.active(name)), anchor="plan")
        + section(
            "Retraining history",
            table(
                ["started", "candidate", "deployment", "plan", "state", "last step"],
                history,
                empty="No rollout under a plan yet.",
            ),
            anchor="retraining",
        )
        + section("Candidate comparisons", _comparisons(services.candidates.reports(name)),
                  anchor="candidates")
    )  # fmt: skip
