"""The profile field registry: which fields a vault holds and what their values may be.

Every value a customer stores passes through :func:`validate_field`, which checks it against
the field's rules and returns it in one normal form (trimmed, canonical case, E.164 phone
numbers, ...). Storing only normal forms means equal facts compare equal, which the segment
index and vendors' reads rely on. Values are stored as canonical JSON (:func:`encode_value`),
at most :data:`MAX_VALUE_BYTES` each and :data:`MAX_PROFILE_BYTES` for a whole profile.

Besides the standard fields, a customer may add custom fields named ``x-<name>`` holding any
JSON value. Error messages name the field, the rule and at most a key name, never the value,
so they are safe to log.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from types import MappingProxyType
from typing import TypeAlias, cast

from vault.errors import ValidationError

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
"""A value JSON can carry. ``None`` occurs only inside lists and objects: a field never
holds ``null`` itself, since clearing a field is a separate operation."""

MAX_VALUE_BYTES = 4096
"""The most one value may take as canonical JSON in UTF-8 (4 KiB)."""

MAX_PROFILE_BYTES = 262144
"""The most all of a profile's current values may take together (256 KiB)."""

MAX_NESTING = 32
"""How many lists and objects deep a custom value may nest; deeper input is refused before
it can exhaust the JSON codec's recursion limit."""

# A block of codes reads (and checks against the standard) better than 249 quoted items.
COUNTRY_CODES: frozenset[str] = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ
    DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP
    GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG
    KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML
    MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE
    PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL
    SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM
    US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905
)
"""The 249 officially assigned ISO 3166-1 alpha-2 country codes."""

_NO_VALUE = "must have a value; to remove it, clear the field instead"
_UNKNOWN_FIELD = "is not a known field; custom fields are named x-<name>"
_BAD_CUSTOM_NAME = (
    "is not a valid custom field name: after x- use 1-63 lowercase letters, digits, "
    "_ or -, starting with a letter or digit"
)
_TOO_BIG = f"must be at most {MAX_VALUE_BYTES} bytes"
_MAX_TEXT_CHARS = 16 * MAX_VALUE_BYTES
_INT_LIMIT = 10**MAX_VALUE_BYTES
_CUSTOM_NAME = re.compile(r"x-[a-z0-9][a-z0-9_-]{0,62}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


class _Refused(Exception):
    """A rule a value broke, raised before the field's name is attached.

    ``path`` names the key inside a structured value (``("quiet_hours", "start")``), so the
    customer sees which part to fix.
    """

    def __init__(self, rule: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(rule)
        self.rule = rule
        self.path = path

    def message(self) -> str:
        """The rule, led by the dotted path of the part that broke it."""
        return f"{'.'.join(self.path)} {self.rule}" if self.path else self.rule


Normaliser: TypeAlias = Callable[[object, date], JSONValue]
"""Checks a raw value (on the given day) and returns its normal form, or raises."""


@dataclass(frozen=True)
class FieldSpec:
    """What a profile field is called, how it is shown, and which values it takes.

    ``structured`` is True where the CLI and web forms expect JSON rather than plain text.
    Call :meth:`validate` (or, with the size limit, :func:`validate_field`); ``normalise``
    is the rule it applies.
    """

    name: str
    label: str
    description: str
    structured: bool
    normalise: Normaliser = field(repr=False, compare=False)

    def validate(self, value: object, *, today: date) -> JSONValue:
        """Return the normal form of ``value``, or raise ValidationError naming the rule.

        ``today`` decides date rules (a birthdate may not be in the future); it is passed
        in so the result never depends on a hidden clock.
        """
        if value is None:
            raise ValidationError(self.name, _NO_VALUE)
        try:
            return self.normalise(value, today)
        except _Refused as refused:
            raise ValidationError(self.name, refused.message()) from None


# Shared building blocks.


def _within(key: str, normalise: Callable[[object], JSONValue], value: object) -> JSONValue:
    """Normalise one part of a structured value, naming the part if it is refused."""
    try:
        return normalise(value)
    except _Refused as refused:
        raise _Refused(refused.rule, (key, *refused.path)) from None


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _Refused("must be text")
    return value


def _clean_text(value: object, max_chars: int, *, multiline: bool = False) -> str:
    """Trimmed NFC text of 1 to ``max_chars`` characters without control characters.

    With ``multiline``, line breaks are kept as ``\\n`` (each line trimmed, blank lines
    dropped), as OpenID Connect allows in a street address.
    """
    text = unicodedata.normalize("NFC", _string(value)).strip()
    if multiline:
        lines = (line.strip() for line in text.replace("\r\n", "\n").split("\n"))
        text = "\n".join(line for line in lines if line)
    if not text:
        raise _Refused("must not be empty")
    allowed = "\n" if multiline else ""
    if any(c not in allowed and unicodedata.category(c) in _REFUSED_CATEGORIES for c in text):
        raise _Refused("must not contain control characters")
    if len(text) > max_chars:
        raise _Refused(f"must be at most {max_chars} characters")
    return text


BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
"""Bidirectional embeddings, overrides and isolates: in text one party writes and another
reads (a vendor's name or offer, a customer's intent) they could make it read differently
from what was written."""


JOINERS = frozenset("\u200c\u200d")
"""The zero-width non-joiner and joiner: invisible, but some scripts (Persian, the Indic
ones) and emoji sequences need them to be written correctly."""


def hidden_character(text: str) -> str | None:
    """What ``text`` holds that a reader cannot see, for text one party writes for another:
    a rule naming it (bidirectional controls, or other invisible formatting such as
    direction marks, zero-width spaces and soft hyphens), or None."""
    if any(c in BIDI_CONTROLS for c in text):
        return "must not contain bidirectional controls"
    if any(unicodedata.category(c) == "Cf" and c not in JOINERS for c in text):
        return "must not contain invisible formatting characters"
    return None


def checked_text(value: object, field: str, max_chars: int, *, multiline: bool = False) -> str:
    """Text written for another party to read, by the profile's text rules (see
    ``_clean_text``) and without hidden characters; ValidationError names ``field``."""
    try:
        text = _clean_text(value, max_chars, multiline=multiline)
    except _Refused as refused:
        raise ValidationError(field, refused.rule) from None
    hidden = hidden_character(text)
    if hidden:
        raise ValidationError(field, hidden)
    return text


def _object(value: object, keys: tuple[str, ...]) -> Mapping[object, object]:
    """The value as an object, refusing any key that is not one of ``keys``."""
    if not isinstance(value, dict):
        raise _Refused(f"must be an object with the keys {', '.join(keys)}")
    for key in value:
        if key not in keys:
            shown = json.dumps(str(key)[:40], ensure_ascii=False)
            raise _Refused(f"has an unknown key {shown} (the keys are {', '.join(keys)})")
    return value


def _is_blank(value: object) -> bool:
    """Whether an optional part counts as missing: absent, null or only whitespace."""
    return value is None or (isinstance(value, str) and not value.strip())


# Names, free text and contact details.


def _name(value: object, today: date) -> JSONValue:
    return _clean_text(value, 200)


def _gender(value: object, today: date) -> JSONValue:
    return _clean_text(value, 64)


_EMAIL_RULE = "must be an email address like name@example.com"
_EMAIL_SPECIALS = frozenset('()<>[]\\,;:@"')


def _email(value: object, today: date) -> JSONValue:
    text = _string(value).strip()
    if len(text) > 254:
        raise _Refused("must be at most 254 characters")
    local, at, domain = text.rpartition("@")
    domain = domain.lower()
    if not (at and _is_local_part(local) and _is_domain(domain)):
        raise _Refused(_EMAIL_RULE)
    return f"{local}@{domain}"


def _is_local_part(local: str) -> bool:
    """A dot-atom local part (Unicode allowed, as in RFC 6531), without quoting."""
    if not 1 <= len(local) <= 64 or ".." in local or local[0] == "." or local[-1] == ".":
        return False
    return all(c.isprintable() and not c.isspace() and c not in _EMAIL_SPECIALS for c in local)


def _is_domain(domain: str) -> bool:
    """At least two labels of letters, digits and inner hyphens; a non-numeric TLD."""
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or len(labels[-1]) < 2 or labels[-1].isdigit():
        return False
    return all(_is_label(label) for label in labels)


def _is_label(label: str) -> bool:
    if not 1 <= len(label) <= 63 or label[0] == "-" or label[-1] == "-":
        return False
    return all(c == "-" or unicodedata.category(c)[0] in "LMN" for c in label)


_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _phone(value: object, today: date) -> JSONValue:
    # "+44 (0)20 7946 0000" marks a trunk 0 that is not dialled from abroad: drop it whole.
    text = _string(value).replace("(0)", "")
    number = "".join(c for c in text if not (c.isspace() or c in "-.()"))
    if not _E164.fullmatch(number):
        raise _Refused(
            "must be an international number: + and the country code, like +447700900123"
        )
    return number


# Dates and language.

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EARLIEST_BIRTHDATE = date(1900, 1, 1)


def _birthdate(value: object, today: date) -> JSONValue:
    text = _string(value).strip()
    if not _ISO_DATE.fullmatch(text):
        raise _Refused("must be a date written YYYY-MM-DD, like 1980-04-30")
    try:
        born = date.fromisoformat(text)
    except ValueError:
        raise _Refused("must be a real date") from None
    if born > today:
        raise _Refused("must not be in the future")
    if born < _EARLIEST_BIRTHDATE:
        raise _Refused("must not be before 1900-01-01")
    return born.isoformat()


# RFC 5646 well-formed tags, less two forms customers never mean: 5-8 letter languages
# (none registered, so "english" is refused) and extended language subtags (deprecated for
# the primary language they name: "yue-HK", not "zh-yue-HK"; so "en-GBR" is refused).
_LANGUAGE_TAG = re.compile(
    r"""
    [a-z]{2,3}                      # language
    (?:-[a-z]{4})?                  # script
    (?:-(?:[a-z]{2}|[0-9]{3}))?     # region
    (?P<variants>(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*)
    (?P<extensions>(?:-[0-9a-wyz](?:-[a-z0-9]{2,8})+)*)     # singleton, then subtags
    (?:-x(?:-[a-z0-9]{1,8})+)?      # private use
    """,
    re.ASCII | re.IGNORECASE | re.VERBOSE,
)
_LOCALE_RULE = "must be a language tag like en, en-GB, pt-BR or zh-Hant-TW"


def _locale(value: object, today: date) -> JSONValue:
    tag = _string(value).strip().replace("_", "-")
    match = _LANGUAGE_TAG.fullmatch(tag) if len(tag) <= 64 else None
    if match is None:
        raise _Refused(_LOCALE_RULE)
    # RFC 5646 forbids a repeated variant or extension singleton ("de-1901-1901").
    variants = match["variants"].lower().split("-")[1:]
    singletons = [part for part in match["extensions"].lower().split("-") if len(part) == 1]
    if _has_repeats(variants) or _has_repeats(singletons):
        raise _Refused(_LOCALE_RULE)
    return _canonical_case(tag)


def _has_repeats(subtags: list[str]) -> bool:
    return len(subtags) != len(set(subtags))


def _canonical_case(tag: str) -> str:
    """RFC 5646 case: lowercase, except titlecase scripts and uppercase regions.

    Subtags after a singleton (extensions, private use) stay lowercase.
    """
    subtags = tag.lower().split("-")
    for index in range(1, len(subtags)):
        if len(subtags[index - 1]) == 1:
            break
        if len(subtags[index]) == 2:
            subtags[index] = subtags[index].upper()
        elif len(subtags[index]) == 4 and subtags[index].isalpha():
            subtags[index] = subtags[index].title()
    return "-".join(subtags)


# Postal address.

_POSTAL_CODE = re.compile(r"[A-Z0-9](?:[A-Z0-9 -]{0,14}[A-Z0-9])?")


def _postal_code(value: object) -> JSONValue:
    code = " ".join(_string(value).upper().split())
    if not _POSTAL_CODE.fullmatch(code):
        raise _Refused("must be at most 16 letters, digits, spaces or hyphens")
    return code


def _country(value: object) -> JSONValue:
    code = _string(value).strip().upper()
    if code not in COUNTRY_CODES:
        raise _Refused("must be a two-letter ISO 3166 country code like GB, FR or US")
    return code


_ADDRESS_PARTS: Mapping[str, tuple[bool, Callable[[object], JSONValue]]] = {
    "street": (True, lambda value: _clean_text(value, 500, multiline=True)),
    "locality": (True, lambda value: _clean_text(value, 200)),
    "region": (False, lambda value: _clean_text(value, 200)),
    "postal_code": (False, _postal_code),
    "country": (True, _country),
}


def _postal_address(value: object, today: date) -> JSONValue:
    parts = _object(value, tuple(_ADDRESS_PARTS))
    address: dict[str, JSONValue] = {}
    for key, (required, normalise) in _ADDRESS_PARTS.items():
        if not _is_blank(parts.get(key)):
            address[key] = _within(key, normalise, parts[key])
        elif required:
            raise _Refused("is required", (key,))
    return address


# Interests.

MAX_INTERESTS = 50
"""The most tags the interests field holds."""


def _interests(value: object, today: date) -> JSONValue:
    if not isinstance(value, list):
        raise _Refused('must be a list of tags, like ["cycling", "jazz"]')
    tags: list[JSONValue] = list(
        dict.fromkeys(_tag(raw, position) for position, raw in enumerate(value, start=1))
    )
    if len(tags) > MAX_INTERESTS:
        raise _Refused(f"must have at most {MAX_INTERESTS} tags")
    return tags


def _tag(raw: object, position: int) -> str:
    """One interest: lowercase NFC, single inner spaces, letters, digits and hyphens."""
    text = raw if isinstance(raw, str) else ""
    tag = unicodedata.normalize("NFC", " ".join(text.lower().split()))
    if not 1 <= len(tag) <= 40 or not all(_is_tag_char(c) for c in tag):
        raise _Refused(f"tag {position} must be 1-40 letters, digits, spaces or hyphens")
    return tag


def _is_tag_char(c: str) -> bool:
    """Letters (with their combining marks, as Indic scripts need), digits, space, hyphen."""
    category = unicodedata.category(c)
    return c in " -" or category == "Nd" or category[0] in "LM"


# Channel preferences.

_CHANNELS = ("email", "sms", "phone", "post")
_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])")


def _channel_preferences(value: object, today: date) -> JSONValue:
    keys = (*_CHANNELS, "quiet_hours", "max_offers_per_vendor_per_month")
    given = _object(value, keys)
    prefs: dict[str, JSONValue] = {
        channel: _within(channel, _opt_in, given.get(channel)) for channel in _CHANNELS
    }
    for key, normalise in (
        ("quiet_hours", _quiet_hours),
        ("max_offers_per_vendor_per_month", _offer_cap),
    ):
        if given.get(key) is not None:
            prefs[key] = _within(key, normalise, given[key])
    return prefs


def _opt_in(value: object) -> JSONValue:
    """A channel opt-in: true or false, where a missing one means false (no consent)."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _Refused("must be true or false")
    return value


def _offer_cap(value: object) -> JSONValue:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise _Refused("must be a whole number from 0 to 100")
    return value


def _quiet_hours(value: object) -> JSONValue:
    keys = ("start", "end", "timezone")
    given = _object(value, keys)
    for key in keys:
        if given.get(key) is None:
            raise _Refused("is required", (key,))
    hours: dict[str, JSONValue] = {
        "start": _within("start", _clock, given["start"]),
        "end": _within("end", _clock, given["end"]),
        "timezone": _within("timezone", _timezone, given["timezone"]),
    }
    if hours["start"] == hours["end"]:
        raise _Refused("must start and end at different times")
    return hours


def _clock(value: object) -> JSONValue:
    match = _CLOCK.fullmatch(_string(value).strip())
    if match is None:
        raise _Refused("must be a 24-hour time written HH:MM, like 22:00")
    return f"{int(match[1]):02d}:{match[2]}"


@cache
def _timezone_names() -> Mapping[str, str]:
    """The IANA time zone names this system knows, by their lowercase form."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def _timezone(value: object) -> JSONValue:
    name = _timezone_names().get(_string(value).strip().lower())
    if name is None:
        raise _Refused("must be a time zone name like Europe/London")
    return name


# Custom fields and canonical JSON.


def _any_json(value: object, today: date) -> JSONValue:
    problem = _json_problem(value)
    if problem is not None:
        raise _Refused(problem)
    # The check above proved the value is JSON; a round trip returns a detached copy.
    return decode_value(encode_value(cast(JSONValue, value)))


def _json_problem(value: object, depth: int = 0) -> str | None:
    """Why ``value`` cannot be stored as JSON exactly, or None if it can."""
    if isinstance(value, list | dict) and depth >= MAX_NESTING:
        return f"must not nest lists and objects more than {MAX_NESTING} deep"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return _TOO_BIG if abs(value) >= _INT_LIMIT else None
    if isinstance(value, float):
        return None if math.isfinite(value) else "must not contain NaN or infinity"
    if isinstance(value, str):
        return "must be valid Unicode text" if _LONE_SURROGATE.search(value) else None
    if isinstance(value, list):
        return _first_problem(value, depth + 1)
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            return "must have only text as object keys"
        return _first_problem([*value.keys(), *value.values()], depth + 1)
    return "must be made of text, numbers, true or false, lists and objects"


def _first_problem(values: Iterable[object], depth: int) -> str | None:
    for item in values:
        problem = _json_problem(item, depth)
        if problem is not None:
            return problem
    return None


def encode_value(value: JSONValue) -> bytes:
    """Canonical JSON in UTF-8: sorted keys, no spaces, non-ASCII kept as is.

    One value has one encoding, so sizes are stable and equal values encrypt from equal
    plaintexts. Raises ValueError for what JSON cannot carry exactly (NaN, infinity,
    non-text keys, tuples and other types, lone surrogates, too deep nesting).
    """
    problem = _json_problem(value)
    if problem is not None:
        raise ValueError(f"not a storable JSON value: {problem}")
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def decode_value(data: bytes) -> JSONValue:
    """The value :func:`encode_value` encoded; raises ValueError for anything else."""
    return _loads(data.decode("utf-8"))


def _loads(text: str) -> JSONValue:
    """Strict JSON: no NaN or infinity, no duplicate keys, nothing encode_value refuses."""
    if text.startswith("\ufeff"):
        # What json.loads says of a byte order mark, which a decoder's own decode() misses.
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        value: JSONValue = _STRICT_JSON.decode(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    problem = _json_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("a number is too large")
    return number


def _unique_keys(pairs: list[tuple[str, JSONValue]]) -> dict[str, JSONValue]:
    result: dict[str, JSONValue] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {json.dumps(key[:40], ensure_ascii=False)}")
        result[key] = value
    return result


# Built once: every field a vendor reads is decoded with it.
_STRICT_JSON = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys
)


# The registry.


_STRUCTURED = frozenset({"postal_address", "interests", "channel_preferences"})

_STANDARD: tuple[tuple[str, str, str, Normaliser], ...] = (
    ("given_name", "Given name", "The name you go by, such as your first name.", _name),
    ("family_name", "Family name", "Your surname or family name.", _name),
    ("email", "Email address", "The address vendors may write to.", _email),
    ("phone", "Phone number", "Your phone number, with + and the country code.", _phone),
    (
        "birthdate",
        "Date of birth",
        "Your date of birth, for age checks and birthday offers.",
        _birthdate,
    ),
    ("postal_address", "Postal address", "Where post and deliveries reach you.", _postal_address),
    (
        "locale",
        "Language",
        "The language (and region) you want to be addressed in, such as en-GB.",
        _locale,
    ),
    ("gender", "Gender", "Your gender, in your own words.", _gender),
    (
        "interests",
        "Interests",
        "Topics you want to hear about, as short tags such as cycling or jazz.",
        _interests,
    ),
    (
        "channel_preferences",
        "Contact preferences",
        "How vendors may contact you, when not to, and how often.",
        _channel_preferences,
    ),
)

STANDARD_FIELDS: Mapping[str, FieldSpec] = MappingProxyType(
    {
        name: FieldSpec(name, label, description, name in _STRUCTURED, normalise)
        for name, label, description, normalise in _STANDARD
    }
)
"""The standard fields by name, in the order forms show them."""


def is_custom(name: str) -> bool:
    """Whether ``name`` is a well-formed custom field name, ``x-`` and 1-63 characters."""
    return _CUSTOM_NAME.fullmatch(name) is not None


def spec_for(name: str) -> FieldSpec:
    """The spec of a standard or custom field; raises ValidationError for any other name."""
    spec = STANDARD_FIELDS.get(name)
    if spec is not None:
        return spec
    if is_custom(name):
        label = name[2:].replace("-", " ").replace("_", " ").capitalize()
        return FieldSpec(name, label, "A field you added yourself.", True, _any_json)
    raise ValidationError(name, _BAD_CUSTOM_NAME if name.startswith("x-") else _UNKNOWN_FIELD)


def validate_field(name: str, value: object, *, today: date) -> JSONValue:
    """The normal form of ``value`` for field ``name``, within :data:`MAX_VALUE_BYTES`.

    This is the check every write of a profile value goes through.
    """
    normal = spec_for(name).validate(value, today=today)
    if len(encode_value(normal)) > MAX_VALUE_BYTES:
        raise ValidationError(name, _TOO_BIG)
    return normal


def check_profile_size(values: Mapping[str, JSONValue]) -> None:
    """Refuse a profile whose values together exceed :data:`MAX_PROFILE_BYTES`.

    ``values`` are the profile's values as they would be after a write, already valid;
    only the values count (as canonical JSON), not the field names.
    """
    total = sum(len(encode_value(value)) for value in values.values())
    if total > MAX_PROFILE_BYTES:
        raise ValidationError(
            "profile",
            f"must be at most {MAX_PROFILE_BYTES} bytes (256 KiB) in all; "
            "clear or shorten some fields",
        )


def parse_text_value(name: str, text: str) -> JSONValue:
    """Turn what a customer typed (CLI ``FIELD=VALUE``, a web form) into a raw value.

    Structured fields take JSON; plain fields take the text as it is. A custom field takes
    JSON if the text parses as JSON and the text itself otherwise, except that text
    starting with ``{`` or ``[`` must be JSON, so a mistyped object is never silently
    stored as a string. The result still has to pass :func:`validate_field`.
    """
    spec = spec_for(name)
    if len(text) > _MAX_TEXT_CHARS:
        raise ValidationError(name, f"is too long (a value is at most {MAX_VALUE_BYTES} bytes)")
    if not spec.structured:
        return text
    try:
        return _loads(text)
    except ValueError as error:
        if is_custom(name) and not text.lstrip().startswith(("{", "[")):
            return text
        raise ValidationError(name, f"must be JSON: {_reason(error)}") from None


def _reason(error: ValueError) -> str:
    """A short account of why text is not JSON, for the customer who typed it."""
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg[:1].lower()}{error.msg[1:]} at line {error.lineno} column {error.colno}"
    return str(error)
