"""RFC 9162 hashing, proofs and their verification, against published vectors and exhaustively.

The published vectors are in ``rfc6962.json`` (see ``tests/audit/vectors.py``). Everything
else is checked against ``root_from_leaves``, which follows the RFC's recursive definition
with no shortcut, and by spoiling every proof in the ways an attacker or a bug might.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.audit.vectors import CONSISTENCY, INCLUSION, LEAVES, ROOTS
from vault.audit import (
    EMPTY_ROOT,
    ProofError,
    canonical_json,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_by_levels,
    root_from_leaves,
    subtree_hash_of,
    verify_consistency,
    verify_inclusion,
)
from vault.errors import VaultError

MAX_SIZE = 64
OTHER_HASH = hashlib.sha256(b"some other hash").digest()
LEAF_HASHES = [leaf_hash(leaf) for leaf in LEAVES]


def tree(size: int) -> list[bytes]:
    """Leaf hashes of a tree of ``size`` distinct leaves."""
    return [leaf_hash(i.to_bytes(2, "big")) for i in range(size)]


def flip(value: bytes, position: int = 0) -> bytes:
    return value[:position] + bytes([value[position] ^ 0x10]) + value[position + 1 :]


def proof_variants(proof: Sequence[bytes], root: bytes) -> dict[str, list[bytes]]:
    """Every way of spoiling a proof that must make it fail, by name."""
    variants = {
        "extended by the root": [*proof, root],
        "extended by another hash": [*proof, OTHER_HASH],
        "preceded by the root": [root, *proof],
    }
    if proof:
        variants["truncated"] = list(proof[:-1])
        variants["first hash dropped"] = list(proof[1:])
    for position in range(len(proof)):
        variants[f"hash {position} flipped"] = [
            flip(p) if i == position else p for i, p in enumerate(proof)
        ]
    return variants


# Hashing and published vectors.


def test_leaf_and_node_hashes_carry_their_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert (
        node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    )
    assert hashlib.sha256(b"").digest() == EMPTY_ROOT


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_roots_match_the_published_vectors(size: int) -> None:
    assert root_from_leaves(LEAF_HASHES[:size]) == ROOTS[size]
    assert root_by_levels(LEAF_HASHES[:size]) == ROOTS[size]


def test_roots_by_levels_are_the_rfc_roots_at_every_size() -> None:
    leaves = tree(2 * MAX_SIZE + 3)
    for size in range(len(leaves) + 1):
        assert root_by_levels(leaves[:size]) == root_from_leaves(leaves[:size]), size


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_the_published_vectors(
    index: int, size: int, proof: list[bytes]
) -> None:
    leaves = LEAF_HASHES[:size]
    assert inclusion_proof(index, size, subtree_hash_of(leaves)) == proof
    verify_inclusion(index, size, leaves[index], proof, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_published_vectors(
    old: int, new: int, proof: list[bytes]
) -> None:
    assert consistency_proof(old, new, subtree_hash_of(LEAF_HASHES[:new])) == proof
    verify_consistency(old, new, ROOTS[old], ROOTS[new], proof)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY[1:])
@pytest.mark.parametrize("shift", [-1, 1])
def test_published_consistency_proofs_fail_for_another_old_size(
    old: int, new: int, proof: list[bytes], shift: int
) -> None:
    with pytest.raises(ProofError):
        verify_consistency(old + shift, new, ROOTS[old], ROOTS[new], proof)


# Every inclusion proof up to MAX_SIZE leaves.


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_every_inclusion_proof_verifies_and_no_spoiled_one_does(size: int) -> None:
    leaves = tree(size)
    root = root_from_leaves(leaves)
    subtrees = subtree_hash_of(leaves)
    for index in range(size):
        proof = inclusion_proof(index, size, subtrees)
        assert len(proof) <= math.ceil(math.log2(size))
        verify_inclusion(index, size, leaves[index], proof, root)
        assert_inclusion_fails(index, size, leaves, proof, root)


def assert_inclusion_fails(
    index: int, size: int, leaves: list[bytes], proof: list[bytes], root: bytes
) -> None:
    """No claim but the true one verifies: other leaf, index or root, or a spoiled proof."""
    leaf = leaves[index]
    others = {index - 1, index + 1, index ^ 1, index ^ 2, 0, size - 1, size} - {index}
    claims: list[tuple[int, int, bytes, list[bytes], bytes]] = [
        (index, size, flip(leaf), proof, root),
        (index, size, leaf, proof, flip(root, 31)),
        (index, size, leaf, proof, EMPTY_ROOT),
        *[(other, size, leaf, proof, root) for other in others],
        *[(index, size, leaf, spoiled, root) for spoiled in proof_variants(proof, root).values()],
    ]
    for claim in claims:
        with pytest.raises(ProofError):
            verify_inclusion(*claim)


def test_inclusion_in_an_empty_tree_fails() -> None:
    with pytest.raises(ProofError, match="cannot be in a tree of size 0"):
        verify_inclusion(0, 0, LEAF_HASHES[0], [], EMPTY_ROOT)


def test_inclusion_refuses_hashes_of_the_wrong_length() -> None:
    with pytest.raises(ProofError, match="proof hash 0 is 31 bytes"):
        verify_inclusion(0, 2, LEAF_HASHES[0], [LEAF_HASHES[1][:31]], ROOTS[2])
    with pytest.raises(ProofError, match="root is 0 bytes"):
        verify_inclusion(0, 1, LEAF_HASHES[0], [], b"")


def test_proof_errors_are_vault_errors_with_a_reason() -> None:
    with pytest.raises(VaultError, match="leads to root"):
        verify_inclusion(0, 1, LEAF_HASHES[0], [], ROOTS[2])
    with pytest.raises(ProofError, match="too many hashes"):
        verify_inclusion(0, 1, LEAF_HASHES[0], [LEAF_HASHES[1]], ROOTS[1])
    with pytest.raises(ProofError, match="too few hashes"):
        verify_inclusion(0, 2, LEAF_HASHES[0], [], ROOTS[2])


def test_generating_a_proof_outside_the_tree_is_refused() -> None:
    subtrees = subtree_hash_of(LEAF_HASHES)
    with pytest.raises(ValueError, match="leaf 8 is not in a tree of size 8"):
        inclusion_proof(8, 8, subtrees)
    with pytest.raises(ValueError, match="from size 5 to size 4"):
        consistency_proof(5, 4, subtrees)


# Every consistency proof up to MAX_SIZE leaves.


@pytest.mark.parametrize("new", range(1, MAX_SIZE + 1))
def test_every_consistency_proof_verifies_and_no_spoiled_one_does(new: int) -> None:
    leaves = tree(new)
    roots = [root_from_leaves(leaves[:size]) for size in range(new + 1)]
    subtrees = subtree_hash_of(leaves)
    for old in range(1, new + 1):
        proof = consistency_proof(old, new, subtrees)
        verify_consistency(old, new, roots[old], roots[new], proof)
        if old < new:
            assert proof
            assert_consistency_fails(old, new, roots, proof)
        else:
            assert proof == []


def assert_consistency_fails(old: int, new: int, roots: list[bytes], proof: list[bytes]) -> None:
    """No claim but the true one verifies: other roots or old size, or a spoiled proof."""
    others = {old - 1, old + 1, old ^ 1, old ^ 2, new - 1} - {old}
    claims: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (old, new, flip(roots[old]), roots[new], proof),
        (old, new, roots[old], flip(roots[new]), proof),
        (old, new, roots[new], roots[old], proof),
        (old, new, roots[old], roots[new], []),
        (new, old, roots[new], roots[old], proof),
        *[(other, new, roots[other], roots[new], proof) for other in others if 0 < other < new],
        *[
            (old, new, roots[old], roots[new], spoiled)
            for spoiled in proof_variants(proof, roots[new]).values()
        ],
    ]
    for claim in claims:
        with pytest.raises(ProofError):
            verify_consistency(*claim)


def test_the_empty_tree_is_a_prefix_of_every_tree() -> None:
    verify_consistency(0, 8, EMPTY_ROOT, ROOTS[8], [])
    verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert consistency_proof(0, 8, subtree_hash_of(LEAF_HASHES)) == []


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof", "reason"),
    [
        (0, 8, ROOTS[1], ROOTS[8], [], "is not"),
        (0, 8, EMPTY_ROOT, ROOTS[8], [ROOTS[1]], "must be empty"),
        (8, 8, ROOTS[8], ROOTS[7], [], "is not"),
        (8, 8, ROOTS[8], ROOTS[8], [ROOTS[8]], "must be empty"),
        (8, 7, ROOTS[8], ROOTS[7], [], "cannot precede"),
        (-1, 7, EMPTY_ROOT, ROOTS[7], [], "cannot precede"),
        (6, 8, ROOTS[6], ROOTS[8], [], "is empty"),
    ],
)
def test_trivial_and_malformed_consistency_claims_fail(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes], reason: str
) -> None:
    with pytest.raises(ProofError, match=reason):
        verify_consistency(old, new, old_root, new_root, proof)


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=80), st.data())
def test_proofs_hold_for_any_leaves(entries: list[bytes], data: st.DataObject) -> None:
    leaves = [leaf_hash(entry) for entry in entries]
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    subtrees = subtree_hash_of(leaves)
    root = root_from_leaves(leaves)
    verify_inclusion(index, size, leaves[index], inclusion_proof(index, size, subtrees), root)
    old_root = root_from_leaves(leaves[:old])
    verify_consistency(old, size, old_root, root, consistency_proof(old, size, subtrees))


# Canonical JSON.


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    doc = {"type": "grant.given", "fields": ["email", "name"], "actor": "customer", "n": 1}
    assert canonical_json(doc) == (
        b'{"actor":"customer","fields":["email","name"],"n":1,"type":"grant.given"}'
    )


def test_canonical_json_keeps_text_as_utf8() -> None:
    assert canonical_json({"city": "Zürich", "line": "a\nb"}) == (
        '{"city":"Zürich","line":"a\\nb"}'.encode()
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, "\udc80"])
def test_canonical_json_refuses_what_it_cannot_hold_exactly(value: object) -> None:
    with pytest.raises(ValueError, match="JSON"):
        canonical_json({"value": value})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(), json_values, max_size=6))
def test_canonical_json_round_trips_and_ignores_key_order(doc: dict[str, object]) -> None:
    encoded = canonical_json(doc)
    assert json.loads(encoded) == doc
    assert canonical_json(dict(reversed(list(doc.items())))) == encoded
    assert b"\n" not in encoded
