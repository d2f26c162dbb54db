"""Tests of the tamper-evident audit log (vault.audit)."""
