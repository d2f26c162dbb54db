"""``vrm vendor``: the operator lists registered vendors and disables one."""

from __future__ import annotations

import pytest

from tests.conftest import FakeClock
from tests.test_cli import env as env  # pytest finds the imported fixture by its name.
from tests.test_cli import run_real, vrm
from tests.test_vendors import COPYCAT, SEGMENTS, copycat_holding_the_name, shop
from vault.vendors import Vendor
from vrm.services import Services


def register(services: Services, metadata: dict[str, object]) -> Vendor:
    return services.vendors.register(metadata)[0]


def test_list_shows_one_line_per_vendor_oldest_first(
    env: dict[str, str], services: Services, clock: FakeClock
) -> None:
    shop_vendor = register(services, shop())
    clock.advance(1)
    marketing = register(services, SEGMENTS)
    result = vrm("vendor", "list")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{shop_vendor.client_id}\tactive\tAcme Bikes\tauthorization_code,refresh_token\t"
        "profile:email profile:given_name",
        f"{marketing.client_id}\tactive\tAcme Marketing\tclient_credentials\t"
        "segments:query offers:send",
    ]


def test_list_without_vendors_prints_nothing_on_standard_output(
    env: dict[str, str], services: Services
) -> None:
    result = vrm("vendor", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no vendors are registered" in result.stderr


def test_disable_says_what_it_did_and_the_list_shows_it(
    env: dict[str, str], services: Services
) -> None:
    vendor = register(services, shop())
    first = vrm("vendor", "disable", vendor.client_id)
    assert first.exit_code == 0
    assert first.stdout == f"disabled vendor {vendor.client_id} (Acme Bikes)\n"
    again = vrm("vendor", "disable", vendor.client_id)
    assert again.exit_code == 0
    assert again.stdout == f"vendor {vendor.client_id} (Acme Bikes) was already disabled\n"
    assert "\tdisabled\tAcme Bikes\t" in vrm("vendor", "list").stdout
    stored = services.vendors.get(vendor.client_id)
    assert stored is not None
    assert stored.disabled


def test_release_name_says_whether_the_name_is_free(
    env: dict[str, str], services: Services
) -> None:
    squatter = register(services, shop())
    first = vrm("vendor", "disable", squatter.client_id, "--release-name")
    assert first.stdout.splitlines()[1] == "another vendor may now register the name 'Acme Bikes'"
    again = vrm("vendor", "disable", squatter.client_id, "--release-name")
    assert again.stdout.splitlines()[1] == f"vendor {squatter.client_id} held no name to release"


def test_release_name_says_when_an_enabled_vendor_keeps_the_name(
    env: dict[str, str], services: Services, clock: FakeClock
) -> None:
    _, copycat_id = copycat_holding_the_name(services.vendors, clock)
    result = vrm("vendor", "disable", copycat_id, "--release-name")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1] == (
        f"the name {COPYCAT!r} reads as an enabled vendor's too: it stays that vendor's"
    )


@pytest.mark.parametrize("client_id", ["vnd_" + "0" * 24, "not/an id"])
def test_disabling_an_unknown_vendor_is_a_one_line_error(
    env: dict[str, str], services: Services, client_id: str
) -> None:
    result = run_real(env, "vendor", "disable", client_id)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f'error: no vendor with client id "{client_id}"']
