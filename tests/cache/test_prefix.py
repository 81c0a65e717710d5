"""PrefixStore: longest-prefix matching, eviction rules, capacity and stats on hand-made KV."""
import pytest
import torch

from workbench.cache import PrefixStore


def kv_of(ids, layers=2):
    """Per-layer KV whose values encode the token ids: (1, 1, T, 2)."""
    x = torch.as_tensor(ids, dtype=torch.float32).view(1, 1, -1, 1).expand(1, 1, -1, 2).contiguous()
    return [(x, x.clone()) for _ in range(layers)]


def nbytes(ids, layers=2):
    return layers * 2 * len(ids) * 2 * 4


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def test_longest_common_prefix_is_returned_sliced():
    store = PrefixStore(10**6, min_match=2)
    store.insert(torch.tensor([1, 2, 3, 4]), kv_of([1, 2, 3, 4]))
    store.insert(torch.tensor([1, 2, 9, 9, 9]), kv_of([1, 2, 9, 9, 9]))
    n, kv = store.lookup(torch.tensor([1, 2, 3, 7, 7]))
    assert n == 3
    assert kv[0][0].flatten().tolist() == [1, 1, 2, 2, 3, 3]
    assert store.lookup(torch.tensor([5, 6, 7])) == (0, None)
    assert store.stats.lookups == 2 and store.stats.hits == 1 and store.stats.tokens_saved == 3
    assert store.stats.hit_rate == 0.5 and store.stats.saved_share == 3 / 8


def test_short_matches_are_not_hits():
    store = PrefixStore(10**6, min_match=4)
    store.insert(torch.tensor([1, 2, 3, 4]), kv_of([1, 2, 3, 4]))
    assert store.lookup(torch.tensor([1, 2, 3, 9]))[0] == 0


def test_an_extended_prompt_supersedes_its_prefix_entry():
    store = PrefixStore(10**6)
    store.insert(torch.tensor([1, 2]), kv_of([1, 2]))
    store.insert(torch.tensor([1, 2, 3]), kv_of([1, 2, 3]))
    assert len(store.entries) == 1 and store.bytes_held == nbytes([1, 2, 3])
    assert store.insert(torch.tensor([1, 2]), kv_of([1, 2])) is False  # covered


@pytest.mark.parametrize("eviction, survivor", [("lru", [2, 2, 2]), ("lfu", [1, 1, 1])])
def test_eviction_when_full(eviction, survivor):
    clock = Clock()
    store = PrefixStore(2 * nbytes([0, 0, 0]), eviction=eviction, min_match=1, clock=clock)
    store.insert(torch.tensor([1, 1, 1]), kv_of([1, 1, 1]))
    for _ in range(3):  # entry 1 used often, but long ago
        clock.t += 1
        store.lookup(torch.tensor([1, 1, 1]))
    clock.t += 1
    store.insert(torch.tensor([2, 2, 2]), kv_of([2, 2, 2]))
    clock.t += 1
    store.lookup(torch.tensor([2, 2, 2]))
    clock.t += 1
    store.insert(torch.tensor([3, 3, 3]), kv_of([3, 3, 3]))  # over capacity: one must go
    kept = [e.ids.tolist() for e in store.entries]
    assert survivor in kept and [3, 3, 3] in kept and len(kept) == 2
    assert store.stats.evictions == 1 and store.bytes_held <= store.capacity_bytes


def test_ttl_drops_entries_unused_for_too_long():
    clock = Clock()
    store = PrefixStore(10**6, eviction="ttl", ttl_s=10, min_match=1, clock=clock)
    store.insert(torch.tensor([1, 2]), kv_of([1, 2]))
    clock.t = 5
    assert store.lookup(torch.tensor([1, 2]))[0] == 2
    clock.t = 16  # 11 s since the last use
    assert store.lookup(torch.tensor([1, 2]))[0] == 0
    assert store.entries == [] and store.stats.evictions == 1


def test_an_entry_larger_than_the_capacity_is_not_kept():
    store = PrefixStore(nbytes([1, 2]) - 1)
    assert store.insert(torch.tensor([1, 2]), kv_of([1, 2])) is False
    assert store.bytes_held == 0


def test_bad_eviction_is_rejected():
    with pytest.raises(ValueError, match="eviction must be lru, lfu or ttl"):
        PrefixStore(100, eviction="random")
