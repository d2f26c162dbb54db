"""Settings come from defaults, then the instance file, then VRM_ variables, then overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from vrm.config import DEFAULTS, ConfigError, load_config


def test_defaults_apply_when_nothing_is_set(tmp_path: Path) -> None:
    config = load_config({"DATA": str(tmp_path)}, environ={})
    assert config == {**DEFAULTS, "DATA": str(tmp_path)}


def test_each_layer_wins_over_the_one_before(tmp_path: Path) -> None:
    (tmp_path / "vrm.toml").write_text("port = 9000\nhost = '0.0.0.0'\nlogin_base_delay = 2\n")
    env = {"VRM_DATA": str(tmp_path), "VRM_PORT": "9100", "VRM_SECURE_COOKIES": "yes"}
    config = load_config({"HOST": "10.0.0.1"}, environ=env)
    assert config["PORT"] == 9100
    assert config["HOST"] == "10.0.0.1"
    assert config["SECURE_COOKIES"] is True
    assert config["LOGIN_BASE_DELAY"] == 2


def test_vrm_config_names_the_instance_file(tmp_path: Path) -> None:
    named = tmp_path / "elsewhere.toml"
    named.write_text("store = 'memory'\n")
    config = load_config(environ={"VRM_CONFIG": str(named)})
    assert config["STORE"] == "memory"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("colour = 'blue'\n", "unknown setting 'colour'"),
        ("port = 'eighty'\n", "port must be a whole number"),
        ("secure_cookies = 3\n", "secure_cookies must be true or false"),
        ("kek = 'abc'\n", "the KEK belongs in VRM_KEK"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_bad_instance_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "vrm.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config({"DATA": str(tmp_path)}, environ={})


def test_missing_named_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a file"):
        load_config(environ={"VRM_CONFIG": str(tmp_path / "absent.toml")})


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("AUDIT_SYNC", "sometimes", "audit_sync"),
        ("AUDIT_SYNC", "", "audit_sync"),
        ("STORE", "mysql", "store"),
        ("ARGON2_MEMORY_KIB", "0", "argon2_memory_kib"),
        ("ARGON2_MEMORY_KIB", "99999999999", "at most"),
        ("ARGON2_ITERATIONS", "0", "argon2_iterations"),
        ("ARGON2_LANES", "0", "argon2_lanes"),
        ("SESSION_MINUTES", "-5", "session_minutes"),
        ("SESSION_MINUTES", "99999999999999", "at most"),
        ("PORT", "-1", "port"),
        ("PORT", "99999999", "at most 65535"),
        ("SEGMENT_K", "0", "segment_k"),
        ("SEGMENT_NOISE", "-1", "segment_noise"),
        ("SEGMENT_NOISE", "nan", "segment_noise"),
        ("LOGIN_BASE_DELAY", "inf", "login_base_delay"),
        ("OFFER_CAP_DEFAULT", "-1", "offer_cap_default"),
        ("WEBHOOK_ALLOW_PRIVATE", "maybe", "webhook_allow_private"),
        ("ISSUER", "notaurl", "issuer"),
        ("ISSUER", "ftp://vault.example", "issuer"),
    ],
)
def test_a_setting_out_of_range_is_refused_by_name(
    tmp_path: Path, name: str, value: str, words: str
) -> None:
    environ = {"VRM_DATA": str(tmp_path), f"VRM_{name}": value}
    with pytest.raises(ConfigError, match=words):
        load_config(environ=environ)


def test_an_empty_data_directory_setting_means_the_default(tmp_path: Path) -> None:
    assert load_config(environ={"VRM_DATA": ""})["DATA"] == DEFAULTS["DATA"]
    assert load_config({"DATA": ""}, environ={})["DATA"] == DEFAULTS["DATA"]


def test_the_default_issuer_writes_an_ipv6_host_in_brackets() -> None:
    from vrm.services import issuer_of

    assert issuer_of({**DEFAULTS, "HOST": "::1", "PORT": 8767}) == "http://[::1]:8767"
    assert issuer_of({**DEFAULTS, "HOST": "127.0.0.1"}) == "http://127.0.0.1:8000"
