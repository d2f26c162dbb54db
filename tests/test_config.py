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
