"""Prompt starts kept beside llama.cpp's cache, so that a prompt beginning like an earlier one
that is no longer in the cache is not read again.

llama.cpp's cache holds the tokens of one prompt at a time, and the next prompt reuses the part
it begins with. The span prompt begins with solved examples in the question's language (about 230
tokens in English, 290 in French): while questions come in one language, every prompt finds them
in the cache and only its own text and question are read. A question in the other language
replaced them, and the next question in the first language read its examples again (on the
realdocs devset, whose questions alternate between French and English, half the prompts were
read whole: about 0.7 s instead of 0.2 s on two cores).

`KeptPrefixes` keeps the cache's state (`llama_state_seq_get_data`: the keys and values of its
tokens, about 18 kB a token for Gemma 3 270M, saved in a few milliseconds) of the prompt that a
prompt beginning otherwise is about to replace, one per start (a few of them); a prompt that
shares more with a kept one than with the cache gets that state back (`llama_state_seq_set_data`),
cut to what they share, before its own tokens are read."""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence

MIN_TOKENS = 64  # a shorter shared start is read again in a few milliseconds: not worth keeping
KEPT = 4  # starts kept (one per language's examples, and room for the plain prompts)


def shared(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens `a` and `b` begin with in common.

    >>> shared([1, 2, 3, 4], [1, 2, 5]), shared([], [1]), shared([7], [8])
    (2, 0, 0)
    """
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


class KeptPrefixes:
    """Saved cache states by the tokens they hold, the least recently used dropped past `limit`."""

    def __init__(self, limit: int = KEPT, min_tokens: int = MIN_TOKENS):
        self.limit = limit
        self.min_tokens = min_tokens
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def best(self, tokens: Sequence[int], than: int) -> tuple[tuple[int, ...], int] | None:
        """The kept start sharing the most tokens with `tokens`, and how many, when that is more
        than `than` (what the cache already shares with them) and at least `min_tokens`.

        >>> kept = KeptPrefixes(min_tokens=2)
        >>> kept.keep((1, 2, 3), b"a"); kept.keep((5, 6), b"b")
        >>> kept.best([1, 2, 9], 0), kept.best([1, 2, 9], 2), kept.best([5, 7], 0)
        (((1, 2, 3), 2), None, None)
        """
        found = None
        for key in self._states:
            n = shared(key, tokens)
            if n > than and n >= self.min_tokens and (found is None or n > found[1]):
                found = (key, n)
        if found is not None:
            self._states.move_to_end(found[0])
        return found

    def keep(self, tokens: Sequence[int], state: bytes) -> None:
        """Keep `state`, the cache holding `tokens`, in place of a kept one with the same start
        (at least `min_tokens` in common: the same language's examples)."""
        key = tuple(int(t) for t in tokens)
        for other in [k for k in self._states if shared(k, key) >= self.min_tokens]:
            del self._states[other]
        self._states[key] = state
        while len(self._states) > self.limit:
            self._states.popitem(last=False)

    def state(self, key: tuple[int, ...]) -> bytes:
        return self._states[key]


def save(llm) -> bytes:
    """The cache state of sequence 0 of a `llama_cpp.Llama` (the tokens it holds now)."""
    import llama_cpp

    size = llama_cpp.llama_state_seq_get_size(llm.ctx, 0)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(llm.ctx, buffer, size, 0)
    return bytes(memoryview(buffer)[:written])  # (slicing the array itself makes a list of ints)


def restore(llm, key: tuple[int, ...], state: bytes) -> bool:
    """Put a saved state back in place of what the cache holds; False (the cache then emptied)
    when llama.cpp refuses it."""
    import llama_cpp

    llm._ctx.kv_cache_seq_rm(-1, 0, -1)
    buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
    if not llama_cpp.llama_state_seq_set_data(llm.ctx, buffer, len(state), 0):
        llm.reset()
        return False
    llm.input_ids[: len(key)] = key
    llm.n_tokens = len(key)
    return True
