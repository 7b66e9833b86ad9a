"""What MLflow needs to run quietly in tests: its third-party warnings and its environment."""

from __future__ import annotations

# Third-party warnings, each ignored by message so that anything new still fails the run:
MLFLOW_WARNINGS = [
    # mlflow's SQLAlchemy store configures mappers with noload, deprecated in SQLAlchemy 2.1.
    "ignore:The ``noload`` loader strategy is deprecated",
    # mlflow compares DataFrame columns with a range when saving the input example (pandas 3).
    "ignore:Operation with range is deprecated",
    # mlflow's schema inference hints that integer outputs cannot hold missing values.
    "ignore:Hint.*Inferred schema contains integer column",
    # importing mlflow's GenAI agent types warns about their Any type hints (colored text).
    "ignore:.*Any type hint is inferred as AnyType",
]
MLFLOW_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_UV_AUTO_DETECT": "false",
    "MLFLOW_LOG_UV_FILES": "false",
    "MLFLOW_SKIP_PIP_REQUIREMENTS_CHECK": "true",
}
