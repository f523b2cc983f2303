"""The Merkle tree of RFC 9162 §2.1 (Certificate Transparency v2), over stored complete subtrees.

A complete subtree is named ``(level, index)``: it covers leaves ``[index * 2**level, (index + 1) * 2**level)``.
Only complete subtrees are stored (never a root of an incomplete tree), so a node once written never changes:
the log's tables are append-only like its events. Any RFC subtree ``[start, end)`` is the fold, right to left,
of the complete subtrees its size decomposes into (``range_keys``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

Key = tuple[int, int]
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """MTH of one entry: SHA-256(0x00 || entry)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, computed straight from the RFC's definition (the reference)."""
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root(leaf_hashes[:k]), root(leaf_hashes[k:]))


def _check_size(*sizes: int) -> None:
    for size in sizes:
        if size < 0:
            raise ValueError(f"a tree size cannot be negative: {size}")


def range_keys(start: int, end: int) -> list[Key]:
    """The complete subtrees, left to right, that make up the RFC subtree [start, end)."""
    _check_size(start, end)
    if end < start:
        raise ValueError(f"range [{start}, {end}) is reversed")
    keys: list[Key] = []
    position = start
    for level in range((end - start).bit_length() - 1, -1, -1):
        if (end - start) >> level & 1:
            if position % (1 << level):
                raise ValueError(f"[{start}, {end}) is not a subtree of any Merkle tree")
            keys.append((level, position >> level))
            position += 1 << level
    return keys


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of consecutive complete subtrees (largest first), folded right to left."""
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def range_hash(start: int, end: int, get: Callable[[Key], bytes]) -> bytes:
    """MTH of the leaves [start, end), read from stored complete subtrees."""
    return fold([get(key) for key in range_keys(start, end)])


def frontier_keys(size: int) -> list[Key]:
    """The complete subtrees a tree of this size is made of (its right edge)."""
    return range_keys(0, size)


def append(frontier: Sequence[bytes], size: int, leaf: bytes) -> tuple[list[bytes], list[tuple[Key, bytes]]]:
    """Add a leaf hash to a tree given by its frontier: the new frontier and the complete subtrees made."""
    _check_size(size)
    if len(frontier) != size.bit_count():
        raise ValueError(f"a tree of {size} leaves has {size.bit_count()} frontier hashes, not {len(frontier)}")
    stack = list(frontier)
    stack.append(leaf)
    made: list[tuple[Key, bytes]] = [((0, size), leaf)]
    level, index = 0, size
    while index & 1:
        right = stack.pop()
        left = stack.pop()
        parent = node_hash(left, right)
        stack.append(parent)
        level, index = level + 1, index >> 1
        made.append(((level, index), parent))
    return stack, made


def root_from_frontier(frontier: Sequence[bytes]) -> bytes:
    """The root of the tree whose frontier this is."""
    return fold(frontier)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes are the audit path of leaf ``index`` (RFC 9162 §2.1.3.1), bottom first."""
    _check_size(index, size)
    if index >= size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The subtrees whose hashes prove a tree of ``old_size`` is a prefix of ``new_size`` (§2.1.4.1)."""
    _check_size(old_size, new_size)
    if old_size > new_size:
        raise ValueError(f"a tree of {new_size} leaves cannot extend one of {old_size}")
    if old_size == 0 or old_size == new_size:
        return []
    ranges: list[tuple[int, int]] = []
    m, start, end, complete = old_size, 0, new_size, True
    while True:
        n = end - start
        if m == n:
            if not complete:
                ranges.append((start, end))
            break
        k = _split(n)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            complete = False
    ranges.reverse()
    return ranges


def keys_of(ranges: Sequence[tuple[int, int]]) -> set[Key]:
    """Every stored subtree needed to hash these ranges."""
    return {key for start, end in ranges for key in range_keys(start, end)}


def hashes_of(ranges: Sequence[tuple[int, int]], get: Callable[[Key], bytes]) -> list[bytes]:
    """The hashes of these ranges, read from stored subtrees."""
    return [range_hash(start, end, get) for start, end in ranges]


def _hashes(*values: bytes) -> bool:
    return all(len(value) == 32 for value in values)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does this audit path take the leaf hash at ``index`` to the root of ``size``?"""
    if index < 0 or size <= 0 or index >= size or not _hashes(leaf, root_hash, *proof):
        return False
    fn, sn = index, size - 1
    result = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            result = node_hash(p, result)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and result == root_hash


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of ``old_size`` with ``old_root`` a prefix of the one of ``new_size``?"""
    if old_size < 0 or new_size < old_size or not _hashes(old_root, new_root, *proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


class MemoryTree:
    """A whole tree in memory: the same storage scheme as the database's, for tests and the checker."""

    def __init__(self) -> None:
        self.nodes: dict[Key, bytes] = {}
        self.frontier: list[bytes] = []
        self.size = 0

    def append(self, data: bytes) -> int:
        """Add an entry (hashed as a leaf); its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, leaf: bytes) -> int:
        """Add a leaf hash; its index."""
        self.frontier, made = append(self.frontier, self.size, leaf)
        self.nodes.update(made)
        self.size += 1
        return self.size - 1

    def _size(self, size: int | None) -> int:
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"the tree has {self.size} leaves, not {size}")
        return size

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (all by default)."""
        return range_hash(0, self._size(size), self.nodes.__getitem__)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of ``size`` leaves."""
        return hashes_of(inclusion_ranges(index, self._size(size)), self.nodes.__getitem__)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``."""
        return hashes_of(consistency_ranges(old_size, self._size(new_size)), self.nodes.__getitem__)
