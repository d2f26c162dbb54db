"""Unicode's confusable characters (UTS #39): the skeleton of a text, for telling names
apart as people read them.

Two texts that look alike, such as "Acme" written with a Cyrillic A (U+0410), "PayPaI"
with a capital I for the l, or "rnicrosoft", have the same skeleton: each character is replaced
by the prototype it is confusable with (UTS #39 section 4: NFD, each character's
prototype, NFD again). The prototypes are Unicode's, read from ``confusables.txt`` beside
this module (derived from Unicode's file of that name; see its header for the version).
The skeleton is for comparing, never for showing: it mixes cases and scripts.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from importlib import resources

DATA_FILE = "confusables.txt"


def skeleton(text: str, *, l_by_context: bool = False) -> str:
    """The UTS #39 skeleton of ``text``.

    With ``l_by_context``, what reads as an "l" (a capital I, an l, a 1, a Greek capital
    Iota...) is read by the letters beside it: as an "l" next to a small letter, where a
    capital I looks like one ("PayPaI"), and as an "i" among capitals only, where an l
    or a 1 looks like a capital I ("M1CROSOFT") and an L, with its foot, does not.
    """
    prototypes = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    mapped = [prototypes.get(char, char) for char in decomposed]
    if l_by_context:
        _read_l_by_context(decomposed, mapped)
    return unicodedata.normalize("NFD", "".join(mapped))


def _read_l_by_context(chars: str, mapped: list[str]) -> None:
    """Turn each run of "l" prototypes in ``mapped`` (marks within it passed over) into
    "i"s where the letters beside the run are capitals and none is a small letter, each
    letter's case read from its prototype (a Lisu letter reads as the capital it looks
    like, a Cherokee letter that looks like an "i" as a small letter)."""
    start = 0
    while start < len(mapped):
        if mapped[start] != "l":
            start += 1
            continue
        end = start
        while end < len(mapped) and (mapped[end] == "l" or _is_mark(chars[end])):
            end += 1
        while _is_mark(chars[end - 1]):
            end -= 1
        beside = {_case(chars, mapped, start - 1, -1), _case(chars, mapped, end, 1)}
        if "Lu" in beside and "Ll" not in beside:
            for at in range(start, end):
                if mapped[at] == "l":
                    mapped[at] = "i"
        start = end


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


def _case(chars: str, mapped: list[str], at: int, step: int) -> str:
    """Whether the first letter from ``at`` on in direction ``step`` (marks passed over)
    looks like a capital ("Lu") or a small letter ("Ll") by its prototype; "" otherwise."""
    while 0 <= at < len(chars) and _is_mark(chars[at]):
        at += step
    if not 0 <= at < len(chars) or not unicodedata.category(chars[at]).startswith("L"):
        return ""
    looks = [c for c in mapped[at] if not _is_mark(c)]
    if not looks:
        return ""
    category = unicodedata.category(looks[-1] if step < 0 else looks[0])
    return category if category in ("Lu", "Ll") else ""


@cache
def _prototypes() -> dict[str, str]:
    """Each confusable character's prototype, from the data file."""
    text = resources.files("vault").joinpath(DATA_FILE).read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        source, prototype = line.split(";")
        found[chr(int(source, 16))] = "".join(chr(int(code, 16)) for code in prototype.split())
    return found
