"""The customer's personal terms: what they proffer to every vendor, in the spirit of
IEEE 7012 (machine-readable personal privacy terms) and its SD-BASE family.

A small fixed set, so vendors can know in advance what each means. The customer picks
any of them; the consent page shows the chosen ones to the vendor, and the grant and its
signed receipt record them as accepted. The choice is stored sealed in the vault: which
terms a person insists on can say something about them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Term:
    """One personal term: a stable id, a short title, and what it asks of the vendor."""

    term_id: str
    title: str
    text: str


TERMS: tuple[Term, ...] = (
    Term(
        "sd-base:service-only",
        "Use my data only to deliver the service",
        "Use what I share only to provide the service I asked for, and for nothing else.",
    ),
    Term(
        "sd-base:no-third-parties",
        "No sharing with third parties",
        "Do not sell, rent or pass on what I share to anyone else.",
    ),
    Term(
        "sd-base:no-tracking",
        "No tracking or profiling",
        "Do not track me across sites or build a profile of me beyond what I share.",
    ),
    Term(
        "sd-base:delete-at-end",
        "Delete my data when the grant ends",
        "When my grant ends or I withdraw it, delete what you copied from my vault.",
    ),
    Term(
        "sd-base:no-ai-training",
        "No training of AI models",
        "Do not use what I share to train or tune machine-learning models.",
    ),
)

_BY_ID = {term.term_id: term for term in TERMS}


def term(term_id: str) -> Term:
    """The term with ``term_id``; KeyError for an unknown one."""
    return _BY_ID[term_id]


def known_terms(term_ids: Iterable[str]) -> tuple[str, ...]:
    """The given ids that name a known term, in catalogue order, without repeats."""
    wanted = set(term_ids)
    return tuple(t.term_id for t in TERMS if t.term_id in wanted)
