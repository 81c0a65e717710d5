"""CacheConfig: field checks and impossible combinations, each message naming the key and the fix."""
import pytest

from workbench.cache import CacheConfig


@pytest.mark.parametrize("kwargs, match", [
    ({"policy": "paged"}, "cache.policy must be one of none, full, sliding, int8"),
    ({"eviction": "fifo"}, "cache.eviction must be one of lru, lfu, ttl"),
    ({"window": 1}, "cache.window"),
    ({"window": 8, "sinks": 8}, r"cache.sinks must be an integer in 0..window-1 \(7\)"),
    ({"prefix_capacity_mb": -1}, "cache.prefix_capacity_mb"),
    ({"ttl_s": 0}, "cache.ttl_s"),
    ({"policy": "none", "prefix_capacity_mb": 8}, "needs policy full or int8.*keeps no KV"),
    ({"policy": "sliding", "prefix_capacity_mb": 8}, "drops the prefix"),
])
def test_bad_values_are_rejected_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CacheConfig(**kwargs)


def test_labels_and_capacity():
    assert CacheConfig().label == "full"
    assert CacheConfig(policy="sliding", window=128, sinks=4).label == "sliding 128/4"
    cfg = CacheConfig(policy="int8", prefix_capacity_mb=2, eviction="lfu")
    assert cfg.label == "int8 + prefix 2MB lfu"
    assert cfg.prefix_capacity_bytes == 2 * 2**20
