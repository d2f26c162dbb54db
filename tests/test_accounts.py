"""Sign-up, login, the growing delay after failed logins, and password changes."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import PASSWORD, FakeClock
from vault.errors import AlreadyExists, AuthenticationFailed, LoginThrottled, ValidationError
from vault.passwords import PasswordHasher
from vrm.services import Services

EMAIL = "ada@example.org"


def test_customer_logs_in_with_the_password_they_chose(services: Services) -> None:
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    assert services.vaults.authenticate(EMAIL, PASSWORD) == vault_id


def test_email_lookup_ignores_case_and_spaces(services: Services) -> None:
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    assert services.vaults.authenticate("  Ada@Example.ORG ", PASSWORD) == vault_id


def test_wrong_password_and_unknown_email_fail_alike(services: Services) -> None:
    services.vaults.sign_up(EMAIL, PASSWORD)
    with pytest.raises(AuthenticationFailed) as wrong:
        services.vaults.authenticate(EMAIL, "not the password")
    with pytest.raises(AuthenticationFailed) as unknown:
        services.vaults.authenticate("nobody@example.org", PASSWORD)
    assert str(wrong.value) == str(unknown.value)


def test_second_sign_up_with_the_same_email_is_refused(services: Services) -> None:
    services.vaults.sign_up(EMAIL, PASSWORD)
    with pytest.raises(AlreadyExists):
        services.vaults.sign_up(EMAIL.upper(), PASSWORD)
    assert services.store.count_vaults() == 1


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_password_outside_the_length_rules_is_refused(services: Services, password: str) -> None:
    with pytest.raises(ValidationError, match="password"):
        services.vaults.sign_up(EMAIL, password)
    assert services.store.count_vaults() == 0


def test_invalid_email_is_refused_before_anything_is_stored(services: Services) -> None:
    with pytest.raises(ValidationError, match="email"):
        services.vaults.sign_up("not-an-email", PASSWORD)
    assert services.store.count_vaults() == 0


def test_repeated_failures_bring_a_growing_delay(services: Services, clock: FakeClock) -> None:
    services.vaults.sign_up(EMAIL, PASSWORD)
    for _ in range(5):
        with pytest.raises(AuthenticationFailed):
            services.vaults.authenticate(EMAIL, "wrong password!")
    delays = []
    for _ in range(3):
        with pytest.raises(LoginThrottled) as throttled:
            services.vaults.authenticate(EMAIL, PASSWORD)
        delays.append(throttled.value.retry_after)
        clock.advance(throttled.value.retry_after)
        with pytest.raises(AuthenticationFailed):
            services.vaults.authenticate(EMAIL, "wrong password!")
    assert delays[0] < delays[1] < delays[2]


def test_throttled_login_does_not_check_the_password(services: Services, clock: FakeClock) -> None:
    services.vaults.sign_up(EMAIL, PASSWORD)
    for _ in range(6):
        with pytest.raises(AuthenticationFailed):
            services.vaults.authenticate(EMAIL, "wrong password!")
    with pytest.raises(LoginThrottled):
        services.vaults.authenticate(EMAIL, PASSWORD)


def test_success_after_the_delay_resets_the_count(services: Services, clock: FakeClock) -> None:
    services.vaults.sign_up(EMAIL, PASSWORD)
    for _ in range(6):
        with pytest.raises(AuthenticationFailed):
            services.vaults.authenticate(EMAIL, "wrong password!")
    clock.advance(3600)
    services.vaults.authenticate(EMAIL, PASSWORD)
    with pytest.raises(AuthenticationFailed) as again:
        services.vaults.authenticate(EMAIL, "wrong password!")
    assert not isinstance(again.value, LoginThrottled)


def test_changed_password_replaces_the_old_one(services: Services) -> None:
    vault_id = services.vaults.sign_up(EMAIL, PASSWORD)
    services.vaults.change_password(EMAIL, PASSWORD, "a brand new passphrase")
    assert services.vaults.authenticate(EMAIL, "a brand new passphrase") == vault_id
    with pytest.raises(AuthenticationFailed):
        services.vaults.authenticate(EMAIL, PASSWORD)


def test_password_change_needs_the_old_password(services: Services) -> None:
    services.vaults.sign_up(EMAIL, PASSWORD)
    with pytest.raises(AuthenticationFailed):
        services.vaults.change_password(EMAIL, "not the password", "a brand new passphrase")
    services.vaults.authenticate(EMAIL, PASSWORD)


def test_stronger_hash_parameters_rehash_at_next_login(services: Services) -> None:
    from vault.passwords import PasswordHasher

    services.vaults.sign_up(EMAIL, PASSWORD)
    digest = services.vaults.accounts.digest(EMAIL)
    before = services.store.get("accounts", digest)
    stronger = PasswordHasher(memory_kib=16, iterations=2, lanes=1)
    services.vaults.accounts._hasher = stronger
    services.vaults.authenticate(EMAIL, PASSWORD)
    after = services.store.get("accounts", digest)
    assert before is not None
    assert after is not None
    assert "m=16,t=2,p=1" in after["password"]
    assert after["password"] != before["password"]


def test_logins_sent_at_once_cannot_all_get_past_the_delay(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each attempt counts as a failure before its password is checked, in the same write
    as the throttle check: of 20 wrong passwords sent at once, only those before the
    delay starts (the 5 free attempts) are checked at all."""
    services.vaults.sign_up("ada@example.org", PASSWORD)
    real = PasswordHasher.verify
    checking = threading.Semaphore(0)
    release = threading.Event()
    checked: list[bool] = []

    def held_verify(hasher: PasswordHasher, password: str, encoded: str) -> bool:
        checked.append(True)
        checking.release()
        release.wait(10)
        return real(hasher, password, encoded)

    monkeypatch.setattr(PasswordHasher, "verify", held_verify)
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            services.vaults.authenticate("ada@example.org", "wrong password!")
        except LoginThrottled:
            outcomes.append("throttled")
            checking.release()
        except AuthenticationFailed:
            outcomes.append("failed")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for _ in threads:  # Every attempt is either being checked or throttled.
        assert checking.acquire(timeout=10)
    release.set()
    for thread in threads:
        thread.join()

    assert len(checked) == 5
    assert sorted(outcomes) == ["failed"] * 5 + ["throttled"] * 15
