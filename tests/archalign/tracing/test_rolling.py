"""archalign.roll: the compiled roller against the literal reference, and its laws."""
from __future__ import annotations
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import archalign
from archalign.tracing._roll_reference import roll_reference
from archalign.tracing.calls import Call, Trace


def planted(rng, n_blocks=6, vocab=4):
    """A sequence of short random blocks, each repeated 1-4 times back to back."""
    out = []
    for _ in range(rng.integers(1, n_blocks + 1)):
        block = list(rng.integers(0, vocab, rng.integers(1, 6)))
        out += block * int(rng.integers(1, 5))
    return out


@pytest.mark.parametrize("max_period", [None, 1, 2, 5])
def test_agrees_with_reference_on_planted_repeats(max_period):
    rng = np.random.default_rng(max_period or 0)
    for _ in range(400):
        x = planted(rng)
        tokens, counts = archalign.roll(np.array(x, np.int32), max_period=max_period)
        ref_tokens, ref_counts = roll_reference(x, max_period=max_period)
        assert tokens.tolist() == ref_tokens
        assert counts.tolist() == ref_counts


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2), max_size=40), st.sampled_from([None, 1, 3]))
def test_agrees_with_reference_on_any_sequence(x, max_period):
    tokens, counts = archalign.roll(np.array(x, np.int64), max_period=max_period)
    assert (tokens.tolist(), counts.tolist()) == roll_reference(x, max_period=max_period)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("ABC"), max_size=40))
def test_counts_sum_to_the_input_length_and_no_repeat_is_left(x):
    tokens, counts = archalign.roll(x, max_period=None)
    assert counts.sum() == len(x) and (counts >= 1).all()
    for p in range(1, len(tokens) // 2 + 1):
        for i in range(len(tokens) - 2 * p + 1):
            assert tokens[i:i + p] != tokens[i + p:i + 2 * p]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("ABC"), max_size=40))
def test_idempotent(x):
    once = archalign.roll(x)
    twice = archalign.roll(*once)
    assert twice[0] == once[0] and twice[1].tolist() == once[1].tolist()
    assert archalign.roll(once[0])[0] == once[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("ABC"), min_size=1, max_size=12), st.integers(2, 5))
def test_tandem_repetition_rolls_to_the_same_tokens_with_scaled_counts(x, k):
    tokens, counts = archalign.roll(x)
    rep_tokens, rep_counts = archalign.roll(x * k)
    assert rep_tokens == tokens
    assert rep_counts.tolist() == (k * counts).tolist()


def test_known_values():
    assert archalign.roll(list("ABCBCBCD"))[0] == list("ABCD")
    assert archalign.roll(list("ABCBCBCD"))[1].tolist() == [1, 3, 3, 1]
    # blocks whose insides rolled differently still count as copies; counts add up
    assert archalign.roll(list("ABBBABBBBB"))[0] == list("AB")
    assert archalign.roll(list("ABBBABBBBB"))[1].tolist() == [2, 8]
    # longest period first: the seam between two copies is not merged first
    assert archalign.roll(list("ABAABA"))[1].tolist() == [2, 2, 2]
    assert archalign.roll([])[0] == [] and archalign.roll(["A"])[1].tolist() == [1]
    # max_period bounds the block length looked for
    assert archalign.roll(list("ABAB"), max_period=1)[0] == list("ABAB")


def test_ids_keep_their_values_and_dtype():
    tokens, counts = archalign.roll(np.array([7, 2**31 - 1, 7, 2**31 - 1, 5]))
    assert tokens.dtype == np.int32 and tokens.tolist() == [7, 2**31 - 1, 5]
    assert counts.dtype == np.int64 and counts.tolist() == [2, 2, 1]
    # ids beyond int32 are compared exactly and come back unchanged
    wide = [2**40, 3, 2**40 + 1, 3, 2**40, 3, 2**40, 3]
    tokens, counts = archalign.roll(np.array(wide))
    assert (tokens.tolist(), counts.tolist()) == roll_reference(wide)
    assert 2**40 + 1 in tokens.tolist()


@pytest.mark.parametrize("bad, message", [
    ("ABAB", "not one string"),
    (np.zeros((2, 2), np.int32), "1-D array"),
    (np.array([0.5, 1.5]), "integer ids"),
])
def test_bad_tokens(bad, message):
    with pytest.raises(TypeError, match=message):
        archalign.roll(bad)


def test_bad_counts_and_period():
    with pytest.raises(ValueError, match="one per token"):
        archalign.roll(["A", "B"], [1])
    with pytest.raises(ValueError, match="positive"):
        archalign.roll(["A", "B"], [1, 0])
    with pytest.raises(ValueError, match="max_period"):
        archalign.roll(["A"], max_period=0)


def test_trace_tokens_rolled():
    calls = [Call(i, "module", op, "", {}, (), None)
             for i, op in enumerate(["Conv2d", "ReLU", "Conv2d", "ReLU", "Linear"])]
    t = Trace("toy", "meta", calls)
    assert t.tokens("type", rolled=True) == ["Conv2d", "ReLU", "Linear"]
    assert t.tokens("type") == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Linear"]
