"""Configuration: defaults, then an instance file, then ``VRM_`` environment variables,
then explicit overrides (tests, command-line flags), each layer winning over the last.

The instance file is TOML: ``VRM_CONFIG`` names it, else ``<data>/vrm.toml`` is read if it
exists. Its keys are the names below, in any case (``port = 8080``).
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULTS: dict[str, Any] = {
    "DATA": "vrm-data",
    "STORE": "tinydb",
    "KEK": "",
    "HOST": "127.0.0.1",
    "PORT": 8000,
    "SECURE_COOKIES": False,
    "ISSUER": "",
    "JURISDICTION": "EU",
    "REGISTRATION_TOKEN": "",
    "SESSION_MINUTES": 60,
    "AUDIT_SYNC": "always",
    # The checkpoint origin and note key name; "" means "<issuer host>/vrm-vault/audit".
    "AUDIT_ORIGIN": "",
    "ARGON2_MEMORY_KIB": 65536,
    "ARGON2_ITERATIONS": 3,
    "ARGON2_LANES": 4,
    "LOGIN_FREE_ATTEMPTS": 5,
    "LOGIN_BASE_DELAY": 1.0,
    "LOGIN_MAX_DELAY": 900.0,
    "SEGMENT_K": 10,
    "SEGMENT_NOISE": 2.0,
    "SEGMENT_DAILY_QUERIES": 1000,
    "OFFER_CAP_DEFAULT": 4,
    # Webhooks to loopback or private addresses: "" means allowed only when the issuer
    # itself is on loopback (a developer's machine).
    "WEBHOOK_ALLOW_PRIVATE": "",
}

_KIND = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """A configuration value is missing or has the wrong type; names the setting."""


def load_config(
    overrides: Mapping[str, Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Merge the four layers into one settings dict with every key of DEFAULTS."""
    env = os.environ if environ is None else environ
    from_env = _from_env(env)
    extra = {k.upper(): v for k, v in (overrides or {}).items() if v is not None}
    if extra.get("DATA") == "":
        del extra["DATA"]  # An empty --data means "not given", never "here".
    config = dict(DEFAULTS)
    config.update(_from_file(env, extra.get("DATA") or from_env.get("DATA") or config["DATA"]))
    config.update(from_env)
    config.update(extra)
    _check_values(config)
    return config


# What each setting may hold beyond its type: a whole number's least value, the words a
# text setting takes. A setting out of range is refused here, naming it, rather than
# failing deep inside whatever first uses it.
_LEAST = {
    "PORT": 0,  # 0: any free port (tests use it).
    "SESSION_MINUTES": 1,
    "ARGON2_MEMORY_KIB": 8,
    "ARGON2_ITERATIONS": 1,
    "ARGON2_LANES": 1,
    "LOGIN_FREE_ATTEMPTS": 0,
    "SEGMENT_K": 1,
    "SEGMENT_DAILY_QUERIES": 0,
    "OFFER_CAP_DEFAULT": 0,
}
_MOST = {
    "PORT": 65535,
    "SESSION_MINUTES": 60 * 24 * 366,
    "ARGON2_MEMORY_KIB": 4 * 1024 * 1024,
    "ARGON2_ITERATIONS": 100,
    "ARGON2_LANES": 64,
}
_WORDS = {
    "STORE": ("tinydb", "memory"),
    "AUDIT_SYNC": ("always", "none"),
    "WEBHOOK_ALLOW_PRIVATE": ("", *_TRUE, *_FALSE),
}


def _check_values(config: Mapping[str, Any]) -> None:
    """Raise ConfigError for a value of the right type that no setting can take."""
    for key, least in _LEAST.items():
        value = config[key]
        most = _MOST.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{key.lower()} (VRM_{key}) must be a whole number from {least}")
        if most is not None and value > most:
            raise ConfigError(f"{key.lower()} (VRM_{key}) must be at most {most}, not {value}")
    for key, default in DEFAULTS.items():
        if isinstance(default, float) and not (
            isinstance(config[key], int | float)
            and not isinstance(config[key], bool)
            and math.isfinite(config[key])
            and config[key] >= 0
        ):
            raise ConfigError(f"{key.lower()} (VRM_{key}) must be a number from 0 up")
    for key, words in _WORDS.items():
        if str(config[key]).strip().lower() not in words:
            shown = ", ".join(repr(w) for w in words if w) or "nothing"
            raise ConfigError(f"{key.lower()} (VRM_{key}) must be one of {shown}")
    issuer = str(config["ISSUER"])
    if issuer and not _is_http_url(issuer):
        raise ConfigError("issuer (VRM_ISSUER) must be an http or https URL with a host")


def _is_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query
    except ValueError:
        return False


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        text = environ.get(f"VRM_{key}")
        if text is not None and not (key == "DATA" and not text.strip()):
            found[key] = _coerce(f"VRM_{key}", text, default)
    return found


def _from_file(environ: Mapping[str, str], data: str) -> dict[str, Any]:
    named = environ.get("VRM_CONFIG")
    path = Path(named) if named else Path(data) / "vrm.toml"
    if not path.is_file():
        if named:
            raise ConfigError(f"VRM_CONFIG names {path}, which is not a file")
        return {}
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    return {key: _check_file_value(path, key, value) for key, value in _upper(raw).items()}


def _upper(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {key.upper(): value for key, value in raw.items()}


def _check_file_value(path: Path, key: str, value: Any) -> Any:
    if key not in DEFAULTS:
        raise ConfigError(f"{path}: unknown setting {key.lower()!r}")
    if key == "KEK":
        raise ConfigError(f"{path}: the KEK belongs in VRM_KEK or a key file, not a config file")
    if isinstance(value, str) and not isinstance(DEFAULTS[key], str):
        return _coerce(f"{path}: {key.lower()}", value, DEFAULTS[key])
    if not isinstance(value, type(DEFAULTS[key])) and not (
        isinstance(DEFAULTS[key], float) and isinstance(value, int)
    ):
        raise ConfigError(f"{path}: {key.lower()} must be {_KIND[type(DEFAULTS[key])]}")
    return value


def _coerce(name: str, text: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigError(f"{name} must be true or false, not {text!r}")
    try:
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        raise ConfigError(f"{name} must be {_KIND[type(default)]}, not {text!r}") from None
    return text
