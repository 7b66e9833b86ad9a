"""The value-by-value check of short lists agrees with the NumPy check of long ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from medops.core import columns
from medops.core.signature import FeatureSpec

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 0.0, 1.0, 2, "a", "b", "A", "", "1"]),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
BOUND = st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6))


@st.composite
def specs(draw: st.DrawFn) -> FeatureSpec:
    kind = draw(st.sampled_from(["float", "integer", "boolean", "category"]))
    if kind == "category":
        categories = draw(
            st.one_of(
                st.lists(st.sampled_from(["a", "b", "", "1"]), min_size=1, max_size=3, unique=True),
                st.lists(st.sampled_from([0, 1, 2, 1.5]), min_size=1, max_size=3, unique=True),
            )
        )
        return FeatureSpec(name="x", type="category", categories=categories)
    low, high = draw(BOUND), draw(BOUND)
    if low is not None and high is not None and low > high:
        low, high = high, low
    return FeatureSpec(name="x", type=kind, minimum=low, maximum=high)


@settings(max_examples=400, deadline=None)
@given(spec=specs(), values=st.lists(VALUES, min_size=1, max_size=20))
def test_scalar_codes_equal_numpy_codes(spec: FeatureSpec, values: list[object]) -> None:
    """Every value gets the same reason code from ``_scalar_code`` as from ``_codes``."""
    expected = [int(code) for code in columns._codes(spec, values)]
    assert [columns._scalar_code(spec, v) for v in values] == expected


@settings(max_examples=200, deadline=None)
@given(spec=specs(), values=st.lists(VALUES, min_size=1, max_size=40))
def test_short_and_long_lists_list_the_same_errors(spec: FeatureSpec, values: list[object]) -> None:
    """A list checked value by value (short) and the same values checked with NumPy (as a
    tuple, which never takes the short path) give the same field errors."""
    short = columns._feature_errors(spec, values[: columns.SCALAR_ROWS])
    assert short == columns._feature_errors(spec, tuple(values[: columns.SCALAR_ROWS]))
