"""Model cards: the sections of Mitchell et al. 2019 ("Model Cards for Model Reporting")
arranged under the source-attribute categories of ONC HTI-1 (45 CFR 170.315(b)(11)).

Each field is filled from the version and its validation report (``source: "auto"``) or
written by the team (``source: "team"``, see ``CardContent``). ``completeness`` lists what is
missing; a protected promotion needs a complete card. Exports: JSON, Markdown and HTML.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from typing import Any

from medops.registry.schemas import ApprovalOut, CardContent, ReportSummary, VersionOut

CARD_SCHEMA = "medops.model-card/1"


@dataclass(frozen=True)
class _Field:
    key: str
    label: str
    required: bool = True


# (section id, title, team-written fields); auto fields are added per section below.
SECTIONS: tuple[tuple[str, str, tuple[_Field, ...]], ...] = (
    (
        "details",
        "Model details and output",
        (
            _Field("developer", "Developer"),
            _Field("contact", "Contact"),
            _Field("license", "License", required=False),
            _Field("output_interpretation", "How to read the output"),
        ),
    ),
    (
        "purpose",
        "Purpose and intended use",
        (
            _Field("intended_use", "Intended use"),
            _Field("intended_users", "Intended users"),
        ),
    ),
    (
        "out_of_scope",
        "Out-of-scope and cautioned use",
        (_Field("out_of_scope_uses", "Out-of-scope uses"),),
    ),
    (
        "development",
        "Development and input features",
        (
            _Field("development_data", "Training data and population"),
            _Field("exclusion_criteria", "Exclusion criteria", required=False),
        ),
    ),
    (
        "fairness",
        "Fairness and relevant factors",
        (
            _Field("relevant_factors", "Relevant factors (groups, instruments, environments)"),
            _Field("fairness_approach", "How fairness was assessed"),
            _Field("bias_mitigation", "Bias mitigation", required=False),
        ),
    ),
    (
        "validation",
        "Validation",
        (_Field("validation_process", "Validation process"),),
    ),
    ("performance", "Quantitative performance", ()),
    (
        "ethics",
        "Ethical considerations, caveats and recommendations",
        (
            _Field("ethical_considerations", "Ethical considerations"),
            _Field("limitations", "Limitations"),
            _Field("recommendations", "Recommendations"),
        ),
    ),
    (
        "maintenance",
        "Maintenance",
        (
            _Field("update_schedule", "Update schedule"),
            _Field("monitoring_plan", "Monitoring plan"),
        ),
    ),
)

REQUIRED_TEAM_FIELDS = tuple(f.key for _, _, fields in SECTIONS for f in fields if f.required)


def _auto(version: VersionOut, report: ReportSummary | None) -> dict[str, list[dict[str, Any]]]:
    sig = version.signature
    features = [
        {
            "name": f.name,
            "type": f.type,
            "unit": f.unit,
            "range": [f.minimum, f.maximum] if f.type in {"float", "integer"} else None,
            "categories": f.categories,
            "demographic": f.demographic,
        }
        for f in sig.inputs
    ]
    outputs = {
        "class_labels": sig.outputs.class_labels,
        "positive_class": sig.outputs.positive,
        "description": sig.outputs.description,
    }
    auto: dict[str, list[dict[str, Any]]] = {
        "details": [
            _a("model", "Model", f"{version.model} version {version.version}"),
            _a("artifact_digest", "ONNX artifact (SHA-256)", version.artifact_digest),
            _a("framework", "Framework", version.framework),
            _a(
                "registered",
                "Registered",
                f"{version.created_at.isoformat()} by {version.created_by}",
            ),
            _a("description", "Description", version.description),
            _a("outputs", "Outputs", outputs),
        ],
        "development": [
            _a(
                "training_data",
                "Training data reference",
                version.training_data.model_dump() if version.training_data else None,
            ),
            _a("code", "Code reference", version.code.model_dump() if version.code else None),
            _a("hyperparameters", "Hyperparameters", version.hyperparameters or None),
            _a("training_metrics", "Training metrics", version.training_metrics or None),
            _a("input_features", "Input features", features),
            _a("lineage", "Lineage", version.lineage or None),
        ],
        "fairness": [
            _a(
                "demographic_attributes",
                "Demographic attributes analysed",
                [f.name for f in sig.demographics] or None,
            ),
        ],
        "validation": [
            _a(
                "validation_report",
                "Validation report",
                {
                    "id": report.id,
                    "dataset": report.dataset_name,
                    "dataset_digest": report.dataset_digest,
                    "rows": report.dataset_rows,
                    "report_hash": report.report_hash,
                    "passed_policy": report.passed,
                    "failures": report.failures,
                }
                if report
                else None,
            ),
            _a(
                "parity",
                "ONNX parity with the native model",
                version.parity.model_dump() if version.parity else None,
            ),
        ],
        "performance": [
            _a("metrics", "Metrics on the validation set", report.metrics if report else None),
            _a(
                "feature_importance",
                "Mean |contribution| per feature on the validation set (explanations)",
                report.feature_importance if report else None,
            ),
        ],
    }
    return auto


def _a(key: str, label: str, value: Any) -> dict[str, Any]:
    return {"key": key, "label": label, "value": value, "source": "auto"}


# Auto fields whose absence makes a card incomplete.
REQUIRED_AUTO_FIELDS = ("training_data", "demographic_attributes", "validation_report", "metrics")


def build_card(
    version: VersionOut,
    content: CardContent,
    *,
    report: ReportSummary | None,
    approvals: list[ApprovalOut],
    revision: int | None,
    content_hash: str | None,
) -> dict[str, Any]:
    """The whole card as a JSON-ready document."""
    auto = _auto(version, report)
    team = content.model_dump()
    sections = []
    missing = []
    for section_id, title, fields in SECTIONS:
        rows = list(auto.get(section_id, []))
        for f in fields:
            value = team.get(f.key)
            rows.append(
                {
                    "key": f.key,
                    "label": f.label,
                    "value": value,
                    "source": "team",
                    "required": f.required,
                }
            )
            if f.required and not (value and str(value).strip()):
                missing.append(f"{section_id}.{f.key}")
        for row in rows:
            if (
                row["source"] == "auto"
                and row["key"] in REQUIRED_AUTO_FIELDS
                and row["value"] is None
            ):
                missing.append(f"{section_id}.{row['key']}")
        sections.append({"id": section_id, "title": title, "fields": rows})
    return {
        "schema": CARD_SCHEMA,
        "model": version.model,
        "version": version.version,
        "ref": version.ref,
        "revision": revision,
        "content_hash": content_hash,
        "sections": sections,
        "approvals": [a.model_dump(mode="json") for a in approvals],
        "completeness": {"complete": not missing, "missing": missing},
    }


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|!~-])")


def _text(value: Any) -> str:
    """A value on one Markdown line: line breaks become spaces and Markdown syntax is
    escaped, so team-written text cannot forge a heading, a list item (a signature) or
    HTML in the exported card."""
    if value is None:
        return "*(missing)*"
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, default=str)
        return "`" + text.replace("`", "'") + "`"
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def to_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown."""
    lines = [f"# Model card: {card['model']} version {card['version']}", ""]
    status = "complete" if card["completeness"]["complete"] else "INCOMPLETE"
    lines.append(f"Card revision {card['revision'] or 0}, {status}.")
    if card["completeness"]["missing"]:
        lines.append("Missing: " + ", ".join(card["completeness"]["missing"]) + ".")
    lines.append("")
    for section in card["sections"]:
        lines += [f"## {section['title']}", ""]
        for row in section["fields"]:
            lines.append(f"- **{row['label']}**: {_text(row['value'])}")
        lines.append("")
    lines += ["## Electronic signatures", ""]
    if not card["approvals"]:
        lines.append("No signatures.")
    for a in card["approvals"]:
        state = "valid" if a["valid"] else "INVALID: " + "; ".join(a["invalid_reasons"])
        lines.append(
            f"- {_text(a['printed_name'])} ({_text(a['username'])}, {a['role']}), {a['meaning']}, "
            f"signed {a['signed_at']} UTC, manifest {a['manifest_hash'][:16]}: {state}"
        )
    return "\n".join(lines) + "\n"


def html_value(value: Any) -> str:
    """A card field's value as markup (tables for lists of records, definitions for maps)."""
    if value is None:
        return '<span class="missing">missing</span>'
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        keys = list(value[0])
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_plain(v.get(k)))}</td>" for k in keys) + "</tr>"
            for v in value
        )
        return f"<table><tr>{head}</tr>{body}</table>"
    if isinstance(value, dict):
        return (
            "<dl>"
            + "".join(
                f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(_plain(v))}</dd>"
                for k, v in value.items()
            )
            + "</dl>"
        )
    return html.escape(_plain(value)).replace("\n", "<br>")


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


# The page's one style sheet, a constant: the HTML answer's Content-Security-Policy allows it
# by its hash (api/headers.py), so the page needs no 'unsafe-inline'.
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .4rem;"
    "text-align:left;vertical-align:top}.missing{color:#b00;font-weight:bold}"
    ".auto{color:#555;font-size:.8em}.invalid{color:#b00}.valid{color:#070}"
)


def to_html(card: dict[str, Any]) -> str:
    """The card as a standalone HTML page (no scripts, no external resources)."""
    e = html.escape
    title = f"Model card: {card['model']} version {card['version']}"
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    complete = card["completeness"]["complete"]
    parts.append(
        f"<p>Card revision {card['revision'] or 0}: "
        + (
            '<span class="valid">complete</span>'
            if complete
            else '<span class="missing">incomplete</span>'
        )
        + "</p>"
    )
    if card["completeness"]["missing"]:
        parts.append("<p>Missing: " + e(", ".join(card["completeness"]["missing"])) + "</p>")
    for section in card["sections"]:
        parts.append(f"<h2>{e(section['title'])}</h2><table>")
        for row in section["fields"]:
            tag = (
                '<span class="auto"> (from the registry)</span>' if row["source"] == "auto" else ""
            )
            parts.append(
                f"<tr><th>{e(row['label'])}{tag}</th><td>{html_value(row['value'])}</td></tr>"
            )
        parts.append("</table>")
    parts.append("<h2>Electronic signatures</h2>")
    if not card["approvals"]:
        parts.append("<p>No signatures.</p>")
    else:
        parts.append(
            "<table><tr><th>printed name</th><th>user</th><th>role</th><th>meaning</th>"
            "<th>signed (UTC)</th><th>manifest</th><th>status</th></tr>"
        )
        for a in card["approvals"]:
            state = (
                '<span class="valid">valid</span>'
                if a["valid"]
                else '<span class="invalid">invalid: '
                + e("; ".join(a["invalid_reasons"]))
                + "</span>"
            )
            parts.append(
                f"<tr><td>{e(a['printed_name'])}</td><td>{e(a['username'])}</td><td>{e(a['role'])}</td>"
                f"<td>{e(a['meaning'])}</td><td>{e(str(a['signed_at']))}</td>"
                f"<td><code>{e(a['manifest_hash'][:16])}</code></td><td>{state}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def team_content(document: dict[str, Any]) -> dict[str, Any]:
    """The team-written fields of a card document that have a value (what ``card --from``
    copies to another version)."""
    return {
        row["key"]: row["value"]
        for section in document["sections"]
        for row in section["fields"]
        if row["source"] == "team" and row["value"] not in (None, "")
    }


def registration_warnings(version: VersionOut, require_parity: bool) -> list[str]:
    """What a version lacks, at registration, that the promotion gates will need later: what
    can never be added (a version is immutable) comes first, then the next steps."""
    warnings = []
    if version.training_data is None:
        warnings.append(
            "no training data recorded: the card's required 'training data' can never be filled "
            "for this version, so a protected alias (production) will refuse it; register it "
            "again with --training-data NAME@VERSION (a dataset version, after 'medops data add'), "
            "or the URI of data outside medops with --training-digest"
        )
    if not version.signature.demographics:
        warnings.append(
            "no demographic attribute: the card's required subgroup analysis stays empty and "
            "the validation report has no subgroups; register it again with --demographic COLUMN"
        )
    if version.parity is None and require_parity:
        warnings.append(
            "no parity check against the native model: the policy requires one; register the "
            "native model (or a .onnx file with --sample) so parity is measured"
        )
    fields = ", ".join(f.label.lower() for _, _, fs in SECTIONS for f in fs if f.required)
    warnings.append(
        f"before {version.ref} can be promoted: a validation report (medops models validate "
        f"{version.ref} --data FILE --label COLUMN), the card's team fields ({fields}: medops "
        f"models card {version.ref} --set card.json, or --from N to copy version N's), and the "
        "approvals the policy asks for"
    )
    return warnings
