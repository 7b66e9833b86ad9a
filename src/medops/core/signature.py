"""A model version's signature: the features it takes and the classes it predicts.

The signature is the contract between a model and everything around it: the server checks it
against the ONNX graph at registration, validates prediction requests against it, and reads
from it which features are demographic attributes for subgroup analysis.

Two input layouts exist, matching how converters build graphs:

- ``tensor``: one 2-D numeric input ``[N, F]`` whose columns are the features in order
  (skl2onnx with one ``FloatTensorType``, onnxmltools, PyTorch);
- ``columns``: one ``[N, 1]`` input per feature, named like the feature (skl2onnx with a
  ``ColumnTransformer`` over named columns), so categorical features can stay strings.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medops.bounds import Int64

FEATURE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$"
FeatureType = Literal["float", "integer", "boolean", "category"]
CategoryValue = Annotated[str, Field(max_length=200)] | Int64 | float
ClassLabel = Annotated[str, Field(max_length=200)] | Int64


class FeatureSpec(BaseModel):
    """One input feature: name, type, unit, allowed values, and whether it is demographic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=FEATURE_NAME_PATTERN, description="Feature name.")
    type: FeatureType = Field(description="float, integer, boolean or category.")
    unit: str | None = Field(default=None, max_length=64, description="Unit, e.g. mmol/L.")
    description: str | None = Field(default=None, max_length=2000)
    minimum: float | None = Field(default=None, description="Smallest allowed value.")
    maximum: float | None = Field(default=None, description="Largest allowed value.")
    categories: list[CategoryValue] | None = Field(
        default=None, max_length=1000, description="Allowed values of a category feature."
    )
    demographic: bool = Field(
        default=False, description="A demographic attribute used for subgroup analysis."
    )
    bands: list[float] | None = Field(
        default=None,
        max_length=50,
        description="Band edges that group a numeric demographic feature (e.g. age) for "
        "subgroup analysis: [40, 60] gives <40, 40-60 and >=60.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for bound in (self.minimum, self.maximum):
            if bound is not None and not math.isfinite(bound):
                msg = "minimum and maximum must be finite numbers"
                raise ValueError(msg)
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            msg = "minimum is greater than maximum"
            raise ValueError(msg)
        if self.type == "category":
            if not self.categories:
                msg = "a category feature needs its list of categories"
                raise ValueError(msg)
            if len({repr(c) for c in self.categories}) != len(self.categories):
                msg = "categories repeat a value"
                raise ValueError(msg)
            if self.minimum is not None or self.maximum is not None:
                msg = "a category feature takes categories, not minimum/maximum"
                raise ValueError(msg)
        elif self.categories is not None:
            msg = f"categories are only for category features, not {self.type}"
            raise ValueError(msg)
        if self.bands is not None:
            if self.type not in {"float", "integer"} or not self.demographic:
                msg = "bands are only for numeric demographic features"
                raise ValueError(msg)
            if not all(math.isfinite(b) for b in self.bands):
                msg = "bands must be finite"
                raise ValueError(msg)
            if sorted(set(self.bands)) != self.bands or not self.bands:
                msg = "bands must be strictly increasing and not empty"
                raise ValueError(msg)
        return self

    def band_of(self, value: float) -> str:
        """The subgroup label of a numeric demographic value under ``bands``."""
        assert self.bands is not None
        edges = self.bands
        if value < edges[0]:
            return f"<{_fmt(edges[0])}"
        for low, high in itertools.pairwise(edges):
            if low <= value < high:
                return f"{_fmt(low)}-{_fmt(high)}"
        return f">={_fmt(edges[-1])}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class OutputSpec(BaseModel):
    """What the model predicts: class labels in the order of the probability columns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    class_labels: list[ClassLabel] = Field(
        min_length=2, max_length=1000, description="Class labels, in probability-column order."
    )
    positive_class: ClassLabel | None = Field(
        default=None,
        description="The class whose probability is the risk score (binary models); "
        "defaults to the last label.",
    )
    label_output: str = Field(default="label", max_length=200)
    probability_output: str = Field(default="probabilities", max_length=200)
    description: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len({repr(c) for c in self.class_labels}) != len(self.class_labels):
            msg = "class_labels repeat a value"
            raise ValueError(msg)
        if self.positive_class is not None and self.positive_class not in self.class_labels:
            msg = "positive_class is not one of class_labels"
            raise ValueError(msg)
        return self

    @property
    def positive(self) -> ClassLabel:
        """The positive class (binary risk score)."""
        return self.class_labels[-1] if self.positive_class is None else self.positive_class

    @property
    def positive_index(self) -> int:
        """Column of the positive class in the probability output."""
        return self.class_labels.index(self.positive)


class ModelSignature(BaseModel):
    """Inputs (ordered features) and outputs of a model version."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: list[FeatureSpec] = Field(min_length=1, max_length=10_000)
    input_layout: Literal["tensor", "columns"] = Field(
        default="tensor",
        description="tensor: one [N, F] input; columns: one [N, 1] input per feature.",
    )
    tensor_input: str | None = Field(
        default=None,
        max_length=200,
        description="Name of the graph input for the tensor layout (default: the only input).",
    )
    outputs: OutputSpec

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [f.name for f in self.inputs]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                msg = f"feature {name!r} appears twice"
                raise ValueError(msg)
            seen.add(name)
        if self.input_layout == "tensor":
            for f in self.inputs:
                if f.type == "category" and not all(
                    isinstance(c, int | float) and not isinstance(c, bool)
                    for c in f.categories or []
                ):
                    msg = (
                        f"feature {f.name!r}: the tensor layout needs numeric category codes; "
                        "use the columns layout for string categories"
                    )
                    raise ValueError(msg)
        elif self.tensor_input is not None:
            msg = "tensor_input is only for the tensor layout"
            raise ValueError(msg)
        return self

    @property
    def feature_names(self) -> list[str]:
        """Feature names in order."""
        return [f.name for f in self.inputs]

    @property
    def demographics(self) -> list[FeatureSpec]:
        """The features declared as demographic attributes."""
        return [f for f in self.inputs if f.demographic]

    def feature(self, name: str) -> FeatureSpec:
        """The feature called ``name`` (KeyError when there is none)."""
        for f in self.inputs:
            if f.name == name:
                return f
        raise KeyError(name)
