"""Numbers in reasons read as people write them, however often they repeat."""

import numpy as np
import pytest

from detection.features.base import fmt


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e308, "1e+308"), (-2.5e12, "-2.5e+12"), (999_999_999.0, "999,999,999"),
     (12_345.6, "12,346"), (-1_500.0, "-1,500"), (123.45, "123.5"), (45.678, "45.7"),
     (3.0, "3"), (2.50, "2.5"), (1.234, "1.23"), (0.01234, "0.0123"), (0.0, "0"),
     (float("nan"), "nan"), (float("inf"), "inf")],
)
def test_fmt(value, text):
    assert fmt(value) == text
    # Repeated and numpy-typed values (the cached path) read the same.
    assert fmt(np.float64(value)) == text
    assert fmt(value) == text
