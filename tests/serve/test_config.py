"""BatchingConfig: the recipe's batching section, validated field by field."""
import math

import pytest

from workbench.serve import BatchingConfig


def test_defaults_and_recipe_names():
    cfg = BatchingConfig(**{"window_ms": 5, "max_batch": 8, "arrival_rate": 20})
    assert cfg == BatchingConfig()
    assert cfg.to_json() == {"window_ms": 5, "max_batch": 8, "arrival_rate": 20}
    assert BatchingConfig(window_ms=0, max_batch=1, arrival_rate=0.01).window_ms == 0
    assert BatchingConfig(max_batch=64).max_batch == 64
    with pytest.raises(AttributeError):  # frozen
        cfg.window_ms = 1


@pytest.mark.parametrize("kwargs, field, allowed", [
    ({"window_ms": -1}, "window_ms", ">= 0"),
    ({"window_ms": math.inf}, "window_ms", ">= 0"),
    ({"window_ms": math.nan}, "window_ms", ">= 0"),
    ({"window_ms": "5"}, "window_ms", ">= 0"),
    ({"window_ms": True}, "window_ms", ">= 0"),
    ({"max_batch": 0}, "max_batch", "1..64"),
    ({"max_batch": 65}, "max_batch", "1..64"),
    ({"max_batch": 8.0}, "max_batch", "1..64"),
    ({"arrival_rate": 0}, "arrival_rate", "> 0"),
    ({"arrival_rate": -3}, "arrival_rate", "> 0"),
    ({"arrival_rate": None}, "arrival_rate", "> 0"),
])
def test_bad_values_name_field_value_and_range(kwargs, field, allowed):
    with pytest.raises(ValueError) as e:
        BatchingConfig(**kwargs)
    msg = str(e.value)
    assert f"batching.{field}" in msg and allowed in msg and repr(kwargs[field]) in msg
