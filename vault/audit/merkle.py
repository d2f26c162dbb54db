"""Merkle tree hashes and proofs as RFC 9162 section 2.1 defines them (RFC 6962 hashing).

The log's entries are the leaves of one Merkle tree. A leaf hash is
``SHA-256(0x00 || entry)``, an interior node ``SHA-256(0x01 || left || right)``, and the
tree over ``n`` leaves splits at the largest power of two smaller than ``n``. The distinct
prefixes keep a leaf from ever posing as a node (a second-preimage attack).

Proof generation takes ``subtree_hash(start, end)``, the Merkle tree hash of leaves
``[start, end)``, so it works equally over an in-memory list (:func:`subtree_hash_of`) and
over the log's files, which answer it in O(log n) reads. Verification needs only hashes:
it is what an auditor runs, with nothing but an exported log and a checkpoint. Each
verifier raises :class:`~vault.audit.errors.ProofError` and never returns a flag.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Sequence

from vault.audit.errors import ProofError

#: Bytes in every hash: leaf, node, root and proof element alike (SHA-256).
HASH_SIZE = 32

#: The Merkle tree hash of the empty tree: SHA-256 of no bytes at all.
EMPTY_ROOT = hashlib.sha256(b"").digest()

#: ``subtree_hash(start, end)`` returns the Merkle tree hash of leaves ``[start, end)``.
SubtreeHash = Callable[[int, int], bytes]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(entry: bytes) -> bytes:
    """The hash of one log entry as a leaf: ``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two smaller than ``size`` (at least 2): where a tree splits."""
    if size < 2:
        raise ValueError(f"a tree of {size} leaves does not split")
    return 1 << ((size - 1).bit_length() - 1)


def root_from_leaves(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash (MTH) of a list of leaf hashes, computed straight from the RFC.

    This is the reference the log's stored tree is checked against: O(n), no shortcuts.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def root_by_levels(leaf_hashes: Sequence[bytes]) -> bytes:
    """The same tree hash as :func:`root_from_leaves`, built a level at a time.

    Pairing neighbours and carrying an unpaired last node up unchanged builds the very tree
    the RFC's split at the largest power of two does (the log's level files hold it); a
    level at a time it needs no recursion, which makes it several times faster.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    sha256 = hashlib.sha256
    while len(level) > 1:
        pairs = zip(level[::2], level[1::2], strict=False)  # an odd last node has no pair
        above = [sha256(_NODE_PREFIX + left + right).digest() for left, right in pairs]
        if len(level) % 2:
            above.append(level[-1])
        level = above
    return level[0]


def _mth(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return leaf_hashes[start]
    middle = start + split_point(end - start)
    return node_hash(_mth(leaf_hashes, start, middle), _mth(leaf_hashes, middle, end))


def subtree_hash_of(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A ``subtree_hash`` over leaf hashes held in memory, for the proof generators."""

    def subtree_hash(start: int, end: int) -> bytes:
        if not 0 <= start < end <= len(leaf_hashes):
            raise ValueError(f"no subtree [{start}, {end}) in {len(leaf_hashes)} leaves")
        return _mth(leaf_hashes, start, end)

    return subtree_hash


def inclusion_proof(index: int, size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves.

    This is ``PATH(index, D[0:size])`` of RFC 9162 section 2.1.3.1, lowest sibling first.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        middle = start + split_point(end - start)
        if index < middle:
            proof.append(subtree_hash(middle, end))
            end = middle
        else:
            proof.append(subtree_hash(start, middle))
            start = middle
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of that of ``new_size``.

    This is ``PROOF(old_size, D[0:new_size])`` of RFC 9162 section 2.1.4.1, built from
    ``SUBPROOF``. It is empty when there is nothing to prove: an empty old tree, or equal
    sizes.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, complete = 0, new_size, True
    while old_size < end:
        middle = start + split_point(end - start)
        if old_size <= middle:
            proof.append(subtree_hash(middle, end))
            end = middle
        else:
            proof.append(subtree_hash(start, middle))
            start, complete = middle, False
    if not complete:
        proof.append(subtree_hash(start, end))
    proof.reverse()
    return proof


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` whose root is ``root``.

    Implements RFC 9162 section 2.1.3.2; raises ProofError if the proof does not hold.
    """
    _check_hashes(leaf=leaf_hash, root=root)
    _check_proof_hashes(proof)
    if not 0 <= index < size:
        raise ProofError(f"entry {index} cannot be in a tree of size {size}")
    computed = _root_from_inclusion(index, size, leaf_hash, proof)
    if not hmac.compare_digest(computed, root):
        raise ProofError(
            f"inclusion proof of entry {index} in tree size {size} leads to root "
            f"{computed.hex()}, not {root.hex()}"
        )


def _root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """Steps 2 to 5 of RFC 9162 section 2.1.3.2: the root the path leads to."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof for tree size {size} has too many hashes")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"inclusion proof for tree size {size} has too few hashes")
    return r


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(old_size, old_root)`` is a prefix of ``(new_size, new_root)``.

    Implements RFC 9162 section 2.1.4.2 for ``0 < old_size < new_size``. The RFC leaves
    the trivial cases to the caller; here equal sizes need equal roots, and the empty tree
    (whose root must be :data:`EMPTY_ROOT`) is a prefix of every tree; both take an empty
    proof. Raises ProofError if the proof does not hold.
    """
    _check_hashes(old_root=old_root, new_root=new_root)
    _check_proof_hashes(proof)
    if not 0 <= old_size <= new_size:
        raise ProofError(f"a tree of size {old_size} cannot precede one of size {new_size}")
    if old_size in (0, new_size):
        _check_trivial_consistency(old_size, new_size, old_root, new_root, proof)
        return
    first, second = _roots_from_consistency(old_size, new_size, old_root, proof)
    if not hmac.compare_digest(first, old_root):
        raise ProofError(
            f"consistency proof {old_size}->{new_size} leads to old root {first.hex()}, "
            f"not {old_root.hex()}"
        )
    if not hmac.compare_digest(second, new_root):
        raise ProofError(
            f"consistency proof {old_size}->{new_size} leads to new root {second.hex()}, "
            f"not {new_root.hex()}"
        )


def _check_trivial_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    if proof:
        raise ProofError(f"consistency proof {old_size}->{new_size} must be empty")
    expected = EMPTY_ROOT if old_size == 0 else new_root
    if not hmac.compare_digest(old_root, expected):
        raise ProofError(f"old root {old_root.hex()} of size {old_size} is not {expected.hex()}")


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """Steps 1 to 6 of RFC 9162 section 2.1.4.2: the old and new roots the proof leads to."""
    if not proof:
        raise ProofError(f"consistency proof {old_size}->{new_size} is empty")
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof {old_size}->{new_size} has too many hashes")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError(f"consistency proof {old_size}->{new_size} has too few hashes")
    return fr, sr


def _check_hashes(**hashes: bytes) -> None:
    for name, value in hashes.items():
        if len(value) != HASH_SIZE:
            raise ProofError(f"{name} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    for position, value in enumerate(proof):
        if len(value) != HASH_SIZE:
            raise ProofError(f"proof hash {position} is {len(value)} bytes, not {HASH_SIZE}")


def canonical_json(doc: object) -> bytes:
    """``doc`` as canonical JSON: UTF-8, keys sorted, no whitespace, no NaN or infinity.

    These are the exact bytes a leaf hashes, so anyone can recompute a leaf from an event.
    Keys sort by code point (Python's string order); event keys are ASCII, where that is
    also RFC 8785's order. Raises TypeError or ValueError for what JSON cannot hold, and
    TypeError for a key that is not a string: ``json`` would turn it into one but sort it
    by its own value, so the line would not read back as canonical.
    """
    _check_keys(doc)
    text = json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not encodable as UTF-8 JSON: {exc.reason}") from exc


def _check_keys(doc: object) -> None:
    """Raise TypeError if any object in ``doc`` has a key that is not a string."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            _check_keys(value)
    elif isinstance(doc, list | tuple):
        for item in doc:
            _check_keys(item)
