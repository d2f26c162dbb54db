"""Several server processes writing profiles at once lose nothing and leave valid files."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD
from vrm.services import Services, build_services

WRITERS = 4
WRITES = 200


def _writer(config: dict[str, Any], vault_id: str, field: str) -> None:
    services = build_services(config)
    try:
        for n in range(WRITES):
            services.vaults.set_fields(vault_id, {field: n})
    finally:
        services.close()


def _run_writers(config: dict[str, Any], targets: list[tuple[str, str]]) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_writer, args=(config, v, f)) for v, f in targets]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=240)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def _all_files_are_valid_json(root: Path) -> None:
    for path in (root / "store").rglob("*.json"):
        json.loads(path.read_text())


@pytest.mark.slow
def test_writers_to_one_vault_lose_no_update(services: Services, config: dict[str, Any]) -> None:
    vault_id = services.vaults.sign_up("ada@example.org", PASSWORD)
    _run_writers(config, [(vault_id, f"x-writer-{i}") for i in range(WRITERS)])
    history = services.vaults.history(vault_id)
    for i in range(WRITERS):
        assert [v.value for v in history[f"x-writer-{i}"]] == list(range(WRITES))
    _all_files_are_valid_json(services.data_dir)


@pytest.mark.slow
def test_writers_to_different_vaults_lose_no_update(
    services: Services, config: dict[str, Any]
) -> None:
    vaults = [services.vaults.sign_up(f"c{i}@example.org", PASSWORD) for i in range(WRITERS)]
    _run_writers(config, [(v, "x-counter") for v in vaults])
    for vault_id in vaults:
        versions = services.vaults.history(vault_id)["x-counter"]
        assert [v.value for v in versions] == list(range(WRITES))
    _all_files_are_valid_json(services.data_dir)
