"""Configuration: defaults, then an instance file, then ``VRM_`` environment variables,
then explicit overrides (tests, command-line flags), each layer winning over the last.

The instance file is TOML: ``VRM_CONFIG`` names it, else ``<data>/vrm.toml`` is read if it
exists. Its keys are the names below, in any case (``port = 8080``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
    config = dict(DEFAULTS)
    config.update(_from_file(env, extra.get("DATA") or from_env.get("DATA") or config["DATA"]))
    config.update(from_env)
    config.update(extra)
    return config


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        text = environ.get(f"VRM_{key}")
        if text is not None:
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
