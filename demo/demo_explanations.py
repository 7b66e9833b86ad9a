"""The explanations part of the demo: why the model scored a patient as it did.

1. The clinician asks for an explanation with the prediction: the largest feature
   contributions (log-odds, exact for this logistic model), which add up to the output.
2. The same prediction in FHIR carries them as an extension of the RiskAssessment.
3. The auditor reads back what the clinician was shown from the prediction log, and it
   matches the digest in the prediction's audit record.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from medops import examples
from medops.client import Client
from medops.config import Settings

console = Console(width=160)
DEPLOYMENT = "diabetes"
EXPLANATION = "urn:medops:fhir:StructureDefinition/explanation"


def explanations_demo(settings: Settings, login: Callable[[Client, str], None]) -> list[str]:
    """Run the explanations story; returns the outcomes that differ from what should happen."""
    problems: list[str] = []
    console.rule("explanations")
    _, x_eval, _, _ = examples.diabetes_frames()
    features = x_eval.iloc[7].to_dict()
    with Client(settings=settings) as clinician:
        login(clinician, "clinician")
        answer = clinician.predict(DEPLOYMENT, features, patient_ref="pt-2007", explain=True)
        (prediction,) = answer["predictions"]
        e = prediction["explanation"]
        console.print(
            f"clinician asks why patient pt-2007 scored {prediction['score']:.3f}: "
            f"{e['method']} ({'exact' if e['exact'] else 'approximate'}), {e['scale']} scale, "
            f"base {e['base_value']:+.3f}, output {e['output']:+.3f}"
        )
        for c in e["contributions"][:5]:
            bar = ("+" if c["contribution"] > 0 else "-") * max(
                1, round(abs(c["contribution"]) * 10)
            )
            console.print(
                f"  {c['feature']:>4} = {c['value']:<8.4g} {c['contribution']:+.3f} {bar}"
            )
        total = e["base_value"] + e["rest"] + sum(c["contribution"] for c in e["contributions"])
        if abs(total - e["output"]) > 1e-9:
            problems.append("the explanation does not add up to the output")
        fhir = clinician.predict(
            DEPLOYMENT, features, patient_ref="pt-2007", explain=True, fhir=True
        )
        urls = [x["url"] for x in fhir.get("extension", [])]
        console.print(f"  in FHIR: RiskAssessment extension {urls}")
        if urls != [EXPLANATION]:
            problems.append("the FHIR RiskAssessment lacks its explanation extension")
    with Client(settings=settings) as auditor:
        login(auditor, "auditor")
        logged = auditor.prediction_explanation(prediction["id"])
        shown = sum(1 for c in logged.contributions if c.shown)
        console.print(
            f"auditor reads prediction {prediction['id'][:8]}…'s explanation from the log: "
            f"{len(logged.contributions)} contributions, {shown} shown to the clinician, "
            f"{'matches' if logged.audited else 'DOES NOT match'} its audit record"
        )
        if not logged.audited:
            problems.append("the logged explanation does not match its audit record")
    return problems
