"""The published RFC 6962 test vectors, read from ``rfc6962.json`` next to this module.

The leaves are the reference ones used by Certificate Transparency and transparency-dev/merkle
(``proof/verify_test.go``), with the roots of their first 0 to 8 leaves and the inclusion
and consistency proofs listed there. That file counts leaves from 1; these count from 0.
"""

from __future__ import annotations

import json
from pathlib import Path

_DATA = json.loads((Path(__file__).parent / "rfc6962.json").read_text())

#: The leaf entries (not yet hashed).
LEAVES: list[bytes] = [bytes.fromhex(leaf) for leaf in _DATA["leaves"]]

#: ROOTS[n] is the Merkle tree hash of the first n leaves.
ROOTS: list[bytes] = [bytes.fromhex(root) for root in _DATA["roots"]]

#: (index, tree size, proof).
INCLUSION: list[tuple[int, int, list[bytes]]] = [
    (case["index"], case["size"], [bytes.fromhex(p) for p in case["proof"]])
    for case in _DATA["inclusion"]
]

#: (old size, new size, proof).
CONSISTENCY: list[tuple[int, int, list[bytes]]] = [
    (case["old"], case["new"], [bytes.fromhex(p) for p in case["proof"]])
    for case in _DATA["consistency"]
]
