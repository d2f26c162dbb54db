"""Customer passwords, hashed with Argon2id (RFC 9106) from ``cryptography``.

Hashes are PHC strings that carry their own parameters, so raising the cost later only
needs a rehash at the customer's next login, never a flag day.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from vault.errors import ValidationError

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_BYTES = 1024
_PARAMS = re.compile(r"\$m=(\d+),t=(\d+),p=(\d+)\$")


@dataclass(frozen=True)
class PasswordHasher:
    """Argon2id with fixed parameters.

    The defaults are RFC 9106's second recommended option: 64 MiB of memory, 3 passes,
    4 lanes, a 16-byte salt and a 32-byte tag.
    """

    memory_kib: int = 65536
    iterations: int = 3
    lanes: int = 4

    def hash(self, password: str) -> str:
        """Return the PHC-encoded Argon2id hash of ``password``."""
        kdf = Argon2id(
            salt=os.urandom(16),
            length=32,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        )
        return kdf.derive_phc_encoded(password.encode())

    def verify(self, password: str, encoded: str) -> bool:
        """Whether ``password`` matches ``encoded`` (constant time inside Argon2)."""
        try:
            Argon2id.verify_phc_encoded(password.encode(), encoded)
        except (InvalidKey, ValueError):
            return False
        return True

    def needs_rehash(self, encoded: str) -> bool:
        """Whether ``encoded`` was made with other parameters than these."""
        found = _PARAMS.search(encoded)
        wanted = (self.memory_kib, self.iterations, self.lanes)
        return found is None or tuple(int(g) for g in found.groups()) != wanted


def check_password_rules(password: str) -> None:
    """Refuse passwords that are too short or too long (NIST SP 800-63B style: no
    composition rules, a length floor, and a ceiling that bounds hashing cost)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD_CHARS} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValidationError("password", f"must be at most {MAX_PASSWORD_BYTES} bytes")
