"""Unicode's confusable characters (UTS #39): the skeleton of a text, for telling names
apart as people read them.

Two texts that look alike, such as "Acme" written with a Cyrillic A (U+0410), "PayPaI" with a
capital I for the l, or "rnicrosoft", have the same skeleton: each character is replaced
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


def skeleton(text: str, *, capitals_as_i: bool = False) -> str:
    """The UTS #39 skeleton of ``text``.

    With ``capitals_as_i``, a capital letter whose prototype is "l" (a Latin capital I, a
    Greek capital Iota, a Cyrillic capital I) is read as an "i" instead: in a name written
    in capitals it stands for the "i" that the same name has in small letters.
    """
    prototypes = _prototypes()
    decomposed = unicodedata.normalize("NFD", text)
    mapped = "".join(_prototype(char, prototypes, capitals_as_i) for char in decomposed)
    return unicodedata.normalize("NFD", mapped)


def _prototype(char: str, prototypes: dict[str, str], capitals_as_i: bool) -> str:
    found = prototypes.get(char, char)
    if capitals_as_i and found == "l" and unicodedata.category(char) == "Lu":
        return "i"
    return found


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
