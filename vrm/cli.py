"""The ``vrm`` command: run the server and operate vaults and keys.

Commands that act for a customer read the customer's password from standard input when it
is not a terminal (one line), and prompt for it otherwise. Errors print one line to
standard error and exit non-zero; no command prints a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

import click

from keys import finish_signing_rotation, rotate_signing_key, signing_rotation_pending
from keys.errors import KeyringError
from vault.audit import (
    AuditError,
    CheckpointError,
    export_log,
    parse_checkpoint,
    parse_verifier_key,
    verifier_key,
    verify_export,
)
from vault.clock import isoformat
from vault.errors import VaultError
from vault.events import Event
from vault.fields import parse_text_value
from vault.private_files import private_output
from vault.profile import FieldVersion
from vault.rotation import LOCK_NAME, key_usage, keys_under, one_rotation, rotate, rotation_running
from vrm.config import ConfigError, load_config
from vrm.progress import ProgressReporter
from vrm.services import (
    Services,
    build_services,
    issuer_of,
    key_dir,
    store_root,
)

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FAILURE = 1
EXIT_INTERNAL = 70


def data_option(command: F) -> F:
    """The ``--data DIR`` option every command takes."""
    return click.option(
        "--data",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="VRM_DATA",
        help="Data directory (default: $VRM_DATA, else ./vrm-data).",
    )(command)


def email_option(command: F) -> F:
    """The ``--email E`` option naming the customer."""
    return click.option("--email", required=True, help="The customer's login email.")(command)


def command_config(data: Path | None, *, needs_vault: bool = True) -> dict[str, Any]:
    """The configuration of one command: ``--data`` if given, over the usual sources.

    The data directory must hold a vault already (its ``keys`` folder), unless the command
    does not need one (it makes one, or checks for what it needs itself): a mistyped
    ``--data`` or ``VRM_DATA`` stops the command, rather than leaving a new, empty vault
    there and reporting on that.
    """
    config = load_config({"DATA": str(data) if data else None})
    found = Path(config["DATA"]).expanduser()
    if needs_vault and not (found / "keys").is_dir():
        raise click.ClickException(
            f"{found} holds no vault (it has no keys folder): check --data or VRM_DATA "
            "(`vrm serve` or `vrm customer create` makes a vault there)"
        )
    return config


@contextmanager
def opened(
    data: Path | None, config: Mapping[str, Any] | None = None, *, needs_vault: bool = True
) -> Iterator[Services]:
    """Build the services for one command (from ``config`` if the command has loaded it
    already) and close them afterwards; ``needs_vault``: see :func:`command_config`."""
    config = command_config(data, needs_vault=needs_vault) if config is None else config
    services = build_services(config)
    try:
        yield services
    finally:
        services.close()


def read_password(prompt: str = "Password", *, confirm: bool = False) -> str:
    """The password from the terminal (hidden), or the first line of standard input."""
    if sys.stdin is None:  # Started with standard input closed (<&-).
        raise click.ClickException("standard input is closed: give the password on its first line")
    if sys.stdin.isatty():
        return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.ClickException("expected the password on the first line of standard input")
    return line


def require_stdout(why: str) -> None:
    """Stop before doing anything whose result goes to standard output, if it was closed
    when the command started (``>&-``)."""
    if sys.stdout is None:
        raise click.ClickException(f"standard output is closed: {why}")


def print_json(value: Any, out: TextIO | None = None) -> None:
    """Pretty JSON, UTF-8, to standard output or ``out``."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False), file=out)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vrm-vault", prog_name="vrm")
def cli() -> None:
    """vrm-vault: a customer-controlled personal data vault.

    Customers keep one encrypted profile; vendors read only the fields a customer grants,
    through OAuth 2.0. Every command takes --data DIR (or VRM_DATA). `vrm serve`, `vrm
    customer create` and `vrm auditor create` make the vault there (its keys) on first
    use; the other commands need one there already.
    """


@cli.command()
@data_option
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default 8000).")
def serve(data: Path | None, host: str | None, port: int | None) -> None:
    """Run the vault server (waitress) on the embedded TinyDB store."""
    from waitress import serve as waitress_serve

    from vrm.app import MAX_REQUEST_BYTES, create_app
    from vrm.worker import Scheduler

    app = create_app({"DATA": str(data) if data else None, "HOST": host, "PORT": port})
    bind_host, bind_port = app.config["HOST"], app.config["PORT"]
    click.echo(f"vrm-vault serving {app.instance_path} on http://{bind_host}:{bind_port}/")
    issuer = urlsplit(issuer_of(app.extensions["vrm"].config))
    if issuer.scheme == "http" and issuer.hostname not in ("127.0.0.1", "::1", "localhost"):
        click.echo(
            f"warning: the issuer {issuer.geturl()} is plain http on a host that is not "
            "loopback; OAuth 2.0 needs TLS: serve it behind https and set VRM_ISSUER to "
            "the https URL",
            err=True,
        )
    try:
        # Signed under this server's address, unless the log has an origin already (and
        # not for port 0, which names no address another process could use).
        if bind_port:
            app.extensions["vrm"].checkpoints.pin_origin()
    except (AuditError, OSError, ValueError) as error:
        click.echo(f"warning: no checkpoint signed at start: {error}", err=True)
    scheduler = Scheduler(app.extensions["vrm"])
    scheduler.start()
    try:
        waitress_serve(app, host=bind_host, port=bind_port, **serving_limits(MAX_REQUEST_BYTES))
    finally:
        scheduler.stop()


def serving_limits(max_body: int) -> dict[str, Any]:
    """What waitress is told to bound, against clients that send slowly or too much.

    A body larger than the app takes is refused as it arrives, not read in full; headers
    are bounded too. waitress keeps a connection that trickles a byte now and then open
    (its idle timeout restarts on every byte), so a few hundred such clients still fill
    its connection limit: the README says to put a proxy with header and body timeouts in
    front of a server others can reach.
    """
    return {
        "ident": "vrm-vault",
        "max_request_body_size": max_body,
        "max_request_header_size": 64 * 1024,
        "connection_limit": 400,
        "channel_timeout": 30,
        "cleanup_interval": 10,
    }


@cli.group()
def customer() -> None:
    """Customer accounts."""


@customer.command("create")
@data_option
@email_option
def customer_create(data: Path | None, email: str) -> None:
    """Create a customer account and its vault (asks for a password)."""
    password = read_password(confirm=True)
    with opened(data, needs_vault=False) as services:
        services.vaults.sign_up(email, password)
    click.echo(f"created the vault for {email}")


@cli.group()
def auditor() -> None:
    """Auditor accounts: read-only access to the log and the receipts."""


@auditor.command("create")
@data_option
@click.option("--email", required=True, help="The auditor's login email.")
def auditor_create(data: Path | None, email: str) -> None:
    """Create an auditor account (asks for a password)."""
    password = read_password(confirm=True)
    with opened(data, needs_vault=False) as services:
        services.auditors.create(email, password)
    click.echo(f"created the auditor {email}")


@auditor.command("token")
@data_option
@click.option("--email", required=True, help="The auditor's login email.")
def auditor_token(data: Path | None, email: str) -> None:
    """Print a new read-only API token for the auditor (asks for their password)."""
    password = read_password()
    with opened(data) as services:
        auditor_id = services.auditors.authenticate(email, password)
        require_stdout("the token would be lost")
        click.echo(services.auditors.issue_api_token(auditor_id))


@auditor.command("revoke-tokens")
@data_option
@click.option("--email", required=True, help="The auditor's login email.")
def auditor_revoke_tokens(data: Path | None, email: str) -> None:
    """Revoke every API token of the auditor (their web logins stay)."""
    with opened(data) as services:
        revoked = services.auditors.revoke_tokens(email)
    click.echo(f"revoked {revoked} token{'' if revoked == 1 else 's'} of {email}")


@auditor.command("remove")
@data_option
@click.option("--email", required=True, help="The auditor's login email.")
def auditor_remove(data: Path | None, email: str) -> None:
    """Remove the auditor: their API tokens and logged-in sessions stop at once."""
    with opened(data) as services:
        services.auditors.remove(email)
    click.echo(f"removed the auditor {email}")


@cli.group()
def profile() -> None:
    """Read and change a customer's profile."""


@profile.command("set")
@data_option
@email_option
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
def profile_set(data: Path | None, email: str, assignments: tuple[str, ...]) -> None:
    """Set profile fields. VALUE is JSON for structured fields and lists.

    \b
    Example:
      vrm profile set --email ada@example.org given_name=Ada \\
          'interests=["mathematics","engines"]'
    """
    values = dict(_parse_assignment(item) for item in assignments)
    password = read_password()
    with opened(data) as services:
        vault_id = services.vaults.authenticate(email, password)
        services.vaults.set_fields(vault_id, values)
    click.echo(f"updated {', '.join(values)}")


@profile.command("unset")
@data_option
@email_option
@click.argument("names", nargs=-1, required=True, metavar="FIELD...")
def profile_unset(data: Path | None, email: str, names: tuple[str, ...]) -> None:
    """Clear profile fields (their history is kept)."""
    password = read_password()
    with opened(data) as services:
        vault_id = services.vaults.authenticate(email, password)
        services.vaults.clear_fields(vault_id, names)
    click.echo(f"cleared {', '.join(names)}")


@profile.command("show")
@data_option
@email_option
@click.option("--history", is_flag=True, help="Show every version of every field.")
def profile_show(data: Path | None, email: str, history: bool) -> None:
    """Print the profile as JSON."""
    password = read_password()
    with opened(data) as services:
        vaults = services.vaults
        vault_id = vaults.authenticate(email, password)
        if history:
            print_json(_history_json(vaults.history(vault_id)))
        else:
            print_json(vaults.profile(vault_id))


def _history_json(history: Mapping[str, list[FieldVersion]]) -> dict[str, list[dict[str, Any]]]:
    """Every version of every field, as ``vrm vault export`` writes it; reading it this way
    records no export in the audit log."""
    return {
        name: [{"version": v.version, "value": v.value, "at": isoformat(v.at)} for v in versions]
        for name, versions in history.items()
    }


@cli.group()
def vault() -> None:
    """Export or erase a whole vault."""


@vault.command("export")
@data_option
@email_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (mode 0600) instead of standard output.",
)
def vault_export(data: Path | None, email: str, out: Path | None) -> None:
    """Write everything the vault holds, decrypted, and every vendor read and refused
    request (the access history), as one JSON document."""
    password = read_password()
    with opened(data) as services:
        vault_id = services.vaults.authenticate(email, password)
        if out is None:
            require_stdout("use --out FILE")  # Or the export goes nowhere, yet is logged.
            print_json(services.export(vault_id))
            return
        # The file is opened first, so an export that cannot be written is not made (nor
        # recorded in the log as made).
        with private_output(out) as handle:
            print_json(services.export(vault_id), handle)
    click.echo(f"exported the vault to {out}", err=True)


@vault.command("erase")
@data_option
@email_option
@click.option(
    "--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal)."
)
def vault_erase(data: Path | None, email: str, yes: bool) -> None:
    """Erase the vault for good: its data key is destroyed, so no copy can be read."""
    if not yes:
        if sys.stdin is None or not sys.stdin.isatty():
            raise click.ClickException("erasing cannot be undone: pass --yes to confirm")
        typed = click.prompt("This cannot be undone. Type the email to confirm")
        if typed.strip().casefold() != email.strip().casefold():
            raise click.ClickException("the email did not match; nothing was erased")
    password = read_password()
    with opened(data) as services:
        vault_id = services.vaults.authenticate(email, password)
        services.vaults.erase(vault_id)
    click.echo(f"erased the vault of {email}")


@cli.group("grant")
def grant_group() -> None:
    """A customer's grants: which vendor may read which fields, and withdrawing them."""


@grant_group.command("list")
@data_option
@email_option
def grant_list(data: Path | None, email: str) -> None:
    """Print every grant (live ones first) as JSON: vendor, fields and purposes, dates."""
    password = read_password()
    with opened(data) as services:
        vault_id = services.vaults.authenticate(email, password)
        grants = services.consents.grants(vault_id)
        names = {v.client_id: v.client_name for v in services.vendors.vendors()}
    print_json(
        [
            {
                **{k: v for k, v in g.to_json().items() if k != "receipts"},
                "vendor_name": names.get(g.vendor_id, ""),
            }
            for g in grants
        ]
    )


@grant_group.command("revoke")
@data_option
@email_option
@click.argument("grant_id")
@click.option("--field", "fields", multiple=True, help="Withdraw only this field (repeatable).")
def grant_revoke(data: Path | None, email: str, grant_id: str, fields: tuple[str, ...]) -> None:
    """Withdraw a whole grant, or only some of its fields; the vendor's next request is
    refused."""
    password = read_password()
    with opened(data) as services:
        vault_id = services.vaults.authenticate(email, password)
        if fields:
            services.consents.remove_fields(vault_id, grant_id, fields)
        else:
            services.consents.revoke(vault_id, grant_id)
    what = ", ".join(fields) if fields else "the whole grant"
    click.echo(f"withdrew {what} from grant {grant_id}")


@grant_group.command("expire")
@data_option
def grant_expire(data: Path | None) -> None:
    """End every grant that reached its end, in every vault, with receipts, log events and
    webhooks to its vendor (vrm serve does this hourly by itself)."""
    with opened(data) as services:
        progress = ProgressReporter("expiring grants")
        ended = services.consents.expire_all(progress.update)
        progress.finish()
    click.echo(f"{ended} grant{'' if ended == 1 else 's'} expired")


@cli.group("webhooks")
def webhooks_group() -> None:
    """Signed messages to vendors (accepted offers, withdrawn grants) and their delivery."""


@webhooks_group.command("deliver")
@data_option
def webhooks_deliver(data: Path | None) -> None:
    """Post every message that is due now, once (vrm serve does this every few seconds)."""
    with opened(data) as services:
        report = services.webhooks.deliver_due(limit=10_000)
    click.echo(
        f"{report.delivered} delivered, {report.retrying} to retry, {report.failed} given up"
    )


@webhooks_group.command("list")
@data_option
def webhooks_list(data: Path | None) -> None:
    """Print the messages still waiting: vendor, event, attempts, next try, last error."""
    with opened(data) as services:
        waiting = services.webhooks.pending()
    print_json(
        [
            {
                "id": key,
                "vendor": record["vendor"],
                "event": record["event"],
                "attempts": record["attempts"],
                "next_at": record["next_at"],
                "last_error": record["last_error"],
            }
            for key, record in sorted(waiting, key=lambda item: item[1]["next_at"])
        ]
    )


@cli.group("keys")
def keys_group() -> None:
    """The operator's keys."""


@keys_group.command("rotate")
@data_option
def keys_rotate(data: Path | None) -> None:
    """Rewrap every vault's data key under a new key-encryption key.

    Safe to interrupt: run it again and it finishes the rotation it began. The old key
    version is destroyed only once no data key uses it. One runs at a time: a second,
    started while one runs, stops at once and changes nothing.
    """
    config = command_config(data)
    # The lock comes first: a run refused for it opens no store, key or log.
    with one_rotation(key_dir(config) / LOCK_NAME), opened(data, config) as services:
        reporter = ProgressReporter("rewrapping data keys")
        report = rotate(services.store, services.keys.keyring, progress=reporter.update)
        reporter.finish()
        detail: dict[str, str | int | bool] = {
            "current_version": report.current_version,
            "rewrapped": report.rewrapped,
            "retired": ",".join(map(str, report.retired)),
            "orphaned": report.orphaned,
            "unlinked": ",".join(map(str, sorted(report.unlinked))),
        }
        services.events.emit(Event("keys.rotated", services.clock(), "operator", detail=detail))
    if report.new_version is not None:
        click.echo(f"new key-encryption key version {report.new_version}")
    click.echo(f"rewrapped {report.rewrapped} data keys under version {report.current_version}")
    for version in report.retired:
        if version in report.unlinked:
            target = report.unlinked[version]
            left = (
                "that file, which still holds the key, is yours to wipe"
                if os.path.lexists(target)
                else "nothing is there"
            )
            click.echo(
                f"retired version {version}: its key file was a symbolic link to {target}; "
                f"the link is removed, and {left}"
            )
        else:
            click.echo(f"retired version {version}: its key file was destroyed")
    for version in report.unused_but_kept:
        click.echo(f"version {version} is no longer used: remove it from VRM_KEK")
    if report.orphaned:
        click.echo(
            f"left {report.orphaned} data keys under a version that is gone: they belong to "
            "no vault (a sign-up that failed part-way, or one still under way)"
        )


@keys_group.command("rotate-signing")
@data_option
@click.option(
    "--compromised",
    is_flag=True,
    help="The old key leaked: do not publish it, so nothing signed with it verifies any more.",
)
def keys_rotate_signing(data: Path | None, compromised: bool) -> None:
    """Replace the server's signing key (receipts, webhooks, log checkpoints) with a new one.

    The old key is retired: its public half stays in the JWKS, so what it signed still
    verifies (with --compromised it is dropped instead), and its private half is
    destroyed. A running server notices the new key file at its next signature or JWKS
    request, and signs with the new key from then on (no restart). Give auditors the new
    verifier key (`vrm audit key`). Safe to interrupt: run it again, with the same options.
    """
    config = command_config(data)
    keys_dir = key_dir(config)
    # The lock comes first, as for `vrm keys rotate`: one key rotation of either kind runs.
    # The store and the log are opened before anything changes, and the rotation's mark
    # is cleared only once it is logged: a run that cannot log it is finished by the next.
    with one_rotation(keys_dir / LOCK_NAME), opened(data, config) as services:
        done = rotate_signing_key(keys_dir, publish_old=not compromised)
        detail: dict[str, str | int | bool] = {
            "retired": done.retired,
            "current": done.current,
            "published": done.published,
            "log_size": services.audit.size(),
        }
        services.events.emit(
            Event("keys.signing_rotated", services.clock(), "operator", detail=detail)
        )
        finish_signing_rotation(keys_dir)
    where = "still published in /jwks.json" if done.published else "no longer published"
    if done.finished_earlier:
        click.echo(
            f"finished the rotation cut short earlier: retired {done.retired} ({where}); "
            f"no new key was made, {done.current} signs now (run again to rotate it)"
        )
    else:
        click.echo(f"new signing key id {done.current}; retired {done.retired} ({where})")
    click.echo(
        "a running server signs with it from its next signature on; "
        "give auditors the new verifier key (`vrm audit key`)"
    )


@keys_group.command("status")
@data_option
def keys_status(data: Path | None) -> None:
    """Show the key-encryption key versions and how many data keys each wraps."""
    with opened(data) as services:
        keyring = services.keys.keyring
        usage = key_usage(services.store)
        click.echo(f"key-encryption keys from {keyring.source.describe()}")
        listed = keyring.source.versions()
        for version in listed:
            mark = " (current)" if version == keyring.current_version() else ""
            click.echo(f"  version {version}{mark}: {usage.get(version, 0)} data keys")
        set_aside = keyring.source.retiring()
        running = rotation_running(key_dir(services.config) / LOCK_NAME)
        for version in sorted(set_aside):
            state = (
                "being retired by the rotation running now"
                if running
                else "set aside by a rotation that was cut short "
                "(run 'vrm keys rotate' to finish it)"
            )
            click.echo(f"  version {version}: {state}, {usage.get(version, 0)} data keys")
        gone = set(usage) - set(listed) - set(set_aside)
        for version, (orphans, lost) in sorted(keys_under(services.store, gone).items()):
            click.echo(
                f"  version {version}: gone; {orphans} data keys under it belong to no vault "
                f"(a sign-up that failed part-way), {lost} to vaults that cannot be opened"
            )
        signing = services.keys.signing.current()
        click.echo(f"signing key id {signing.kid}")
        for retired in signing.retired:
            click.echo(f"  retired signing key id {retired.kid} (published, signs nothing)")
        if signing_rotation_pending(key_dir(services.config)):
            click.echo(
                "  a signing-key rotation was cut short (run 'vrm keys rotate-signing' to "
                "finish it; a key it was withdrawing stays withdrawn)"
            )


@cli.group()
def vendor() -> None:
    """Vendors registered as OAuth clients."""


@vendor.command("list")
@data_option
def vendor_list(data: Path | None) -> None:
    """List every vendor, oldest first, one per line.

    \b
    The columns, separated by tabs:
      client id, active or disabled, name, grant types, scopes
    """
    with opened(data) as services:
        vendors = services.vendors.vendors()
    if not vendors:
        click.echo("no vendors are registered", err=True)
    for each in vendors:
        status = "disabled" if each.disabled else "active"
        columns = [each.client_id, status, each.client_name, ",".join(each.grant_types)]
        click.echo("\t".join([*columns, " ".join(each.scopes)]))


@vendor.command("disable")
@data_option
@click.argument("client_id", metavar="CLIENT_ID")
@click.option(
    "--release-name",
    is_flag=True,
    help="Also let another vendor register this one's name (one that took a name not its own).",
)
def vendor_disable(data: Path | None, client_id: str, release_name: bool) -> None:
    """Disable a vendor: from its next request on, none of its requests or tokens are
    honoured. This cannot be undone; the vendor would have to register again."""
    with opened(data) as services:
        before = services.vendors.get(client_id)
        after = services.vendors.disable(client_id)
        released = services.vendors.release_name(client_id) if release_name else None
    if before is not None and before.disabled:
        click.echo(f"vendor {client_id} ({after.client_name}) was already disabled")
    else:
        click.echo(f"disabled vendor {client_id} ({after.client_name})")
    if released == "released":
        click.echo(f"another vendor may now register the name {after.client_name!r}")
    elif released == "kept":
        click.echo(
            f"the name {after.client_name!r} reads as an enabled vendor's too: it stays "
            "that vendor's"
        )
    elif released == "none":
        click.echo(f"vendor {client_id} held no name to release")


@cli.group("store")
def store_group() -> None:
    """The store's on-disk format."""


@store_group.command("upgrade")
@data_option
def store_upgrade(data: Path | None) -> None:
    """Upgrade a store written by an earlier version to this version's format.

    A store of an earlier format is refused until this is run, never upgraded as a side
    effect of another command. Stop every vrm process of the earlier version first: it
    would misread what this version writes (and accept refresh tokens already used).
    """
    from vault.storage.tinydb import FORMAT, upgrade_store

    config = command_config(data, needs_vault=False)  # It looks for the store itself.
    if config["STORE"] != "tinydb":
        click.echo(f"the {config['STORE']} store has no format to upgrade")
        return
    root = store_root(config)
    old = upgrade_store(root)
    if old == FORMAT:
        click.echo(f"the store at {root} is already at format {FORMAT}")
    else:
        click.echo(f"upgraded the store at {root} from format {old} to format {FORMAT}")


@cli.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log: signed checkpoints, export and offline verification.

    \b
    An auditor needs three things to check the log, and nothing else:
      vrm audit key --out vrm.vkey          the verifier key (once)
      vrm audit export --out audit.jsonl    the log with a signed checkpoint
      vrm audit verify audit.jsonl --key vrm.vkey [--previous OLD_CHECKPOINT]
    """


def _signed_checkpoint(services: Services) -> str:
    return services.checkpoints.sign()


@audit_group.command("checkpoint")
@data_option
def audit_checkpoint(data: Path | None) -> None:
    """Print a signed checkpoint (C2SP tlog-checkpoint) of the log as it is now."""
    with opened(data) as services:
        click.echo(_signed_checkpoint(services), nl=False)


@audit_group.command("key")
@data_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the verifier key to this file.",
)
@click.option(
    "--all",
    "everyone",
    is_flag=True,
    help="Also the keys retired by `vrm keys rotate-signing`, one a line after the current.",
)
def audit_key(data: Path | None, out: Path | None, everyone: bool) -> None:
    """Print the verifier key (signed-note vkey) that checks the log's checkpoints."""
    with opened(data) as services:
        origin = services.checkpoints.pin_origin()  # May sign: take the key after it.
        signing = services.keys.signing.current()
        retired = signing.retired if everyone else ()
        keys = [signing.public_raw(), *(key.public_raw() for key in retired)]
        vkey = "\n".join(verifier_key(origin, raw) for raw in keys)
    if out is not None:
        out.write_text(vkey + "\n", encoding="utf-8")
    click.echo(vkey)


@audit_group.command("export")
@data_option
@click.option(
    "--since",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="First entry to export; earlier ones are summarised by their subtree hashes.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the export here (JSON lines, mode 0600).",
)
def audit_export(data: Path | None, since: int, out: Path) -> None:
    """Sign a checkpoint of the log and write the entries with it, for `vrm audit verify`."""
    with opened(data) as services:
        checkpoint = _signed_checkpoint(services)
        # The export holds what the checkpoint covers: the log may grow meanwhile.
        size = parse_checkpoint(checkpoint).size
        if since > size:
            raise click.BadParameter(f"the log holds {size} entries", param_hint="--since")
        reporter = ProgressReporter("exporting the audit log")
        count = export_log(services.audit, out, checkpoint, since, progress=reporter.update)
        reporter.finish()
    click.echo(f"exported entries {since} to {size - 1} ({count}) to {out}", err=True)


@audit_group.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_files",
    required=True,
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the verifier key (from `vrm audit key`); repeat it, or give a file "
    "of several lines (`vrm audit key --all`), for checkpoints signed before a key rotation.",
)
@click.option(
    "--previous",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An older signed checkpoint the log must extend.",
)
@click.pass_context
def audit_verify(
    ctx: click.Context, file: Path, key_files: tuple[Path, ...], previous: Path | None
) -> None:
    """Check an export against its signed checkpoint, offline. Exits 0 only when every
    event is intact and in place; otherwise prints one line per problem, naming the entry
    index where one can be named, and exits 1."""
    key_name, public_raw = _verifier_keys(key_files)
    try:
        previous_text = previous.read_text(encoding="utf-8") if previous else None
    except UnicodeDecodeError:
        raise click.ClickException(f"{previous}: not UTF-8 text") from None
    try:
        report = verify_export(file, public_raw, key_name, previous_text)
    except UnicodeDecodeError:
        raise click.ClickException(f"{file}: not UTF-8 text") from None
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if not report.ok:
        click.echo(f"{file}: verification FAILED ({len(report.problems)} problems)", err=True)
        ctx.exit(EXIT_FAILURE)
    checkpoint = report.checkpoint
    if checkpoint is None:  # never: a missing checkpoint is a problem above
        raise click.ClickException(f"{file}: no checkpoint")
    click.echo(
        f"verified {report.entries} entries ({report.since} to {checkpoint.size - 1}) against "
        f"the checkpoint of {checkpoint.origin} at size {checkpoint.size}"
    )


def _verifier_keys(key_files: tuple[Path, ...]) -> tuple[str, tuple[bytes, ...]]:
    """The log's name and every public key in ``key_files`` (one vkey a line)."""
    names: set[str] = set()
    keys: list[bytes] = []
    for key_file in key_files:
        try:
            lines = [line for line in key_file.read_text(encoding="utf-8").splitlines() if line]
            parsed = [parse_verifier_key(line) for line in lines or [""]]
        except (CheckpointError, UnicodeDecodeError) as error:
            raise click.ClickException(f"{key_file}: {error}") from None
        names.update(name for name, _ in parsed)
        keys.extend(raw for _, raw in parsed)
    if len(names) > 1:
        raise click.ClickException("the verifier keys name different logs: " + ", ".join(names))
    return names.pop(), tuple(keys)


def _parse_assignment(item: str) -> tuple[str, Any]:
    name, sep, text = item.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{item!r} is not FIELD=VALUE", param_hint="FIELD=VALUE")
    return name, parse_text_value(name, text)


def main(argv: list[str] | None = None) -> int:
    """Run ``vrm``; return the exit status instead of raising."""
    try:
        result = cli.main(args=argv, prog_name="vrm", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_FAILURE
    except click.UsageError as error:
        hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
        click.echo(f"error: {error.format_message()}{hint}", err=True)
        return error.exit_code
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        return error.exit_code
    except (VaultError, KeyringError, ConfigError) as error:
        click.echo(f"error: {error}", err=True)
        return EXIT_FAILURE
    except OSError as error:
        click.echo(
            f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), err=True
        )
        return EXIT_FAILURE
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as error:  # The promise is one line, never a traceback.
        click.echo(f"internal error ({type(error).__name__}); nothing more is shown", err=True)
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
