"""Prompt starts kept beside llama.cpp's cache (rag/prefix_cache.py): which one a prompt gets back,
which are worth keeping, and how many are kept. The real model's use of them is tested in
tests/test_span.py."""

from rag.prefix_cache import KeptPrefixes, shared


def test_a_prompt_gets_the_kept_start_it_shares_most_with_and_only_when_the_cache_holds_less():
    kept = KeptPrefixes(min_tokens=3)
    kept.keep([1, 2, 3, 4, 5], b"french")
    kept.keep([1, 2, 9, 9], b"english")
    assert kept.best([1, 2, 3, 4, 7, 7], than=1) == ((1, 2, 3, 4, 5), 4)
    assert kept.best([1, 2, 9, 9, 9], than=1) == ((1, 2, 9, 9), 4)
    assert kept.best([1, 2, 3, 4, 7], than=4) is None  # the cache already holds as much
    assert kept.best([1, 2, 8], than=0) is None  # 2 shared tokens: under min_tokens
    assert kept.state((1, 2, 9, 9)) == b"english"


def test_one_prompt_is_kept_per_start_and_the_least_recently_used_goes_first():
    kept = KeptPrefixes(limit=2, min_tokens=2)
    kept.keep([1, 2, 3], b"first French prompt")
    kept.keep([1, 2, 4, 4], b"second French prompt")  # the same start: it replaces the first
    assert len(kept) == 1 and kept.best([1, 2, 3], than=0) == ((1, 2, 4, 4), 2)
    kept.keep([5, 6], b"English")
    kept.best([1, 2], than=0)  # used: the English one is now the least recently used
    kept.keep([7, 8], b"third start")
    assert len(kept) == 2
    assert kept.best([5, 6], than=0) is None and kept.best([1, 2, 4], than=0) is not None


def test_shared_counts_the_common_start():
    assert shared([1, 2, 3], [1, 2, 4, 5]) == 2
    assert shared([1, 2], [1, 2, 3]) == 2
    assert shared([], []) == 0
