"""Hypothesis strategies shared by the property tests of bad input."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

junk = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    max_size=12,
)
"""Short text of any characters a file can hold (no NUL, no lone surrogate)."""


def json_values(*plausible: str, max_leaves: int = 8) -> st.SearchStrategy[Any]:
    """Any JSON value, nested a little, with some `plausible` strings among the junk: what
    a hand-written side file or a misbehaving API may put in any field."""
    return st.recursive(
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(allow_nan=False),
            junk,
            st.sampled_from(plausible) if plausible else junk,
        ),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(junk, inner, max_size=3)
        ),
        max_leaves=max_leaves,
    )
