"""Example clinical data and card text for the demo, tutorials and tests.

Uses only data that ships with scikit-learn (nothing is downloaded): the diabetes dataset of
Efron et al. (442 patients, 10 baseline measurements including age and sex), with disease
progression after one year binarized at the median. Needs pandas.
"""

from __future__ import annotations

import io
from typing import Any

LABEL = "progression"

DIABETES_CARD: dict[str, str] = {
    "developer": "Clinical AI team, example hospital",
    "contact": "clinical-ai@example.org",
    "license": "Internal use only",
    "output_interpretation": (
        "Probability that disease progression one year after baseline is above the cohort "
        "median; 0.5 is the default operating threshold."
    ),
    "intended_use": "Flag adult patients with diabetes for an earlier follow-up visit.",
    "intended_users": "Endocrinologists and diabetes specialist nurses.",
    "out_of_scope_uses": "Diagnosis of diabetes; children; treatment decisions without review.",
    "development_data": "442 adult patients with baseline measurements (Efron et al. 2004).",
    "relevant_factors": "Sex (coded 1/2 in the source data) and age band (<40, 40-60, >=60).",
    "fairness_approach": "AUROC, sensitivity and calibration per sex and age band with "
    "bootstrap 95% intervals; gaps to overall limited by the promotion policy.",
    "validation_process": "Held-out 30% split stratified by outcome; report by medops.",
    "ethical_considerations": "Decision support only; a clinician makes every decision.",
    "limitations": "Small single-cohort dataset; no external validation yet.",
    "recommendations": "Re-validate on local data before use at a new site.",
    "update_schedule": "Yearly, or when monitoring raises a drift or performance alert.",
    "monitoring_plan": "Monthly drift, calibration and subgroup performance review.",
}


def diabetes_frames(*, test_size: float = 0.3, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """Train/evaluation split of the diabetes data: X_train, X_eval, y_train, y_eval (int)."""
    from sklearn.datasets import load_diabetes  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    data = load_diabetes(as_frame=True, scaled=False)
    x = data.data.astype("float64")
    y = (data.target > data.target.median()).astype(int).rename(LABEL)
    parts: list[Any] = train_test_split(x, y, test_size=test_size, random_state=seed, stratify=y)
    return parts[0], parts[1], parts[2], parts[3]


def labeled_csv(x: Any, y: Any) -> bytes:
    """Features and label as the CSV ``medops models validate`` takes."""
    frame = x.copy()
    frame[LABEL] = y.to_numpy()
    out = io.StringIO()
    frame.to_csv(out, index=False)
    return out.getvalue().encode()
