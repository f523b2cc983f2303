"""trace.tlog.merkle against the RFC 9162 §2.1 definitions and the vectors of transparency-dev/merkle (Go).

Vectors: testonly/constants.go (leaves, node and root hashes of sizes 0..8), proof/verify_test.go (inclusion and
consistency proofs and their corruptions), proof/proof_test.go (which nodes make a proof, trees up to 95 leaves),
compact/range_test.go (golden roots up to 65535 leaves), rfc6962/rfc6962_test.go (the hash functions).
The oracles below (_mth, _path, _subproof) are the RFC's recursive definitions, written independently here.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable, Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trace.tlog.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    append,
    leaf_hash,
    node_hash,
    range_keys,
    root,
    root_from_frontier,
    verify_consistency,
    verify_inclusion,
)

h = bytes.fromhex

# --- transparency-dev/merkle testonly/constants.go ---------------------------------------------------------------

LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]
EMPTY_TREE_HASH = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
ROOT_HASHES = [
    EMPTY_TREE_HASH,
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]
# CompactTrees(): the frontier of each size, as (level, index) into NODE_HASHES.
COMPACT_TREES = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# --- proof/verify_test.go -----------------------------------------------------------------------------------------

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")
# (leaf index, tree size, proof); Go writes the index one-based, it is zero-based here.
INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# --- proof/proof_test.go: the nodes of a proof; a list is Go's "rehash", one hash of the nodes' joint range -------

INCLUSION_NODES = [
    (1, 0, []),
    (2, 0, [(0, 1)]),
    (2, 1, [(0, 0)]),
    (3, 1, [(0, 0), (0, 2)]),
    (7, 0, [(0, 1), (1, 1), [(0, 6), (1, 2)]]),
    (7, 1, [(0, 0), (1, 1), [(0, 6), (1, 2)]]),
    (7, 2, [(0, 3), (1, 0), [(0, 6), (1, 2)]]),
    (7, 3, [(0, 2), (1, 0), [(0, 6), (1, 2)]]),
    (7, 4, [(0, 5), (0, 6), (2, 0)]),
    (7, 5, [(0, 4), (0, 6), (2, 0)]),
    (7, 6, [(1, 2), (2, 0)]),
    (4, 2, [(0, 3), (1, 0)]),
    (5, 3, [(0, 2), (1, 0), (0, 4)]),
    (6, 3, [(0, 2), (1, 0), (1, 2)]),
    (6, 4, [(0, 5), (2, 0)]),
    (15, 10, [(0, 11), (1, 4), [(0, 14), (1, 6)], (3, 0)]),
    (31, 24, [(0, 25), (1, 13), [(0, 30), (1, 14)], (3, 2), (4, 0)]),
    (95, 81, [(0, 80), (1, 41), (2, 21), [(0, 94), (1, 46), (2, 22)], (4, 4), (6, 0)]),
]
INCLUSION_ERRORS = [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8)]  # (size, index)
CONSISTENCY_NODES = [
    (1, 2, [(0, 1)]),
    (1, 4, [(0, 1), (1, 1)]),
    (1, 6, [(0, 1), (1, 1), (1, 2)]),
    (2, 3, [(0, 2)]),
    (2, 8, [(1, 1), (2, 1)]),
    (3, 7, [(0, 2), (0, 3), (1, 0), [(0, 6), (1, 2)]]),
    (4, 7, [[(0, 6), (1, 2)]]),
    (5, 7, [(0, 4), (0, 5), (0, 6), (2, 0)]),
    (6, 7, [(1, 2), (0, 6), (2, 0)]),
    (7, 8, [(0, 6), (0, 7), (1, 2), (2, 0)]),
    (1, 1, []),
    (2, 2, []),
    (3, 3, []),
    (4, 4, []),
    (5, 5, []),
    (7, 7, []),
    (8, 8, []),
    (2, 4, [(1, 1)]),
    (3, 5, [(0, 2), (0, 3), (1, 0), (0, 4)]),
    (3, 6, [(0, 2), (0, 3), (1, 0), (1, 2)]),
    (4, 6, [(1, 2)]),
    (1, 7, [(0, 1), (1, 1), [(0, 6), (1, 2)]]),
    (10, 15, [(1, 4), (1, 5), [(0, 14), (1, 6)], (3, 0)]),
    (24, 31, [(3, 2), [(0, 30), (1, 14), (2, 6)], (4, 0)]),
    (81, 95, [(0, 80), (0, 81), (1, 41), (2, 21), [(0, 94), (1, 46), (2, 22)], (4, 4), (6, 0)]),
]
CONSISTENCY_ERRORS = [(5, 0), (9, 8)]

# --- compact/range_test.go TestGetRootHashGolden: leaf i is the two bytes (i & 0xff, i >> 8 & 0xff) ------------------

GOLDEN_ROOTS = {
    10: "VjWMPSYNtCuCNlF/RLnQy6HcwSk6CIipfxm+hettA+4=",
    15: "j4SulYmocFuxdeyp12xXCIgK6PekBcxzAIj4zbQzNEI=",
    16: "c+4Uc6BCMOZf/v3NZK1kqTUJe+bBoFtOhP+P3SayKRE=",
    100: "dUh9hYH88p0CMoHkdr1wC2szbhcLAXOejWpINIooKUY=",
    255: "SmdsuKUqiod3RX2jyF2M6JnbdE4QuTwwipfAowI4/i0=",
    256: "qFI0t/tZ1MdOYgyPpPzHFiZVw86koScXy9q3FU5casA=",
    1000: "RXrgb8xHd55Y48FbfotJwCbV82Kx22LZfEbmBGAvwlQ=",
    4095: "cWRFdQhPcjn9WyBXE/r1f04ejxIm5lvg40DEpRBVS0w=",
    4096: "6uU/phfHg1n/GksYT6TO9aN8EauMCCJRl3dIK0HDs2M=",
    10000: "VZcav65F9haHVRk3wre2axFoBXRNeUh/1d9d5FQfxIg=",
    65535: "iPuVYJhP6SEE4gUFp8qbafd2rYv9YTCDYqAxCj8HdLM=",
}


def _golden_leaf(i: int) -> bytes:
    return bytes([i & 0xFF, (i >> 8) & 0xFF])


# --- independent oracles: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 over a fixed list of leaves ----------------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _mth_of(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return _sha(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = _split(len(hashes))
    return _sha(b"\x01" + _mth_of(hashes[:k]) + _mth_of(hashes[k:]))


MAX = 300
LEAVES = [_sha(b"\x00" + b"leaf %d" % i) for i in range(MAX)]


@cache
def _mth(start: int, end: int) -> bytes:
    """MTH(D[start:end]) of LEAVES."""
    n = end - start
    if n == 0:
        return _sha(b"")
    if n == 1:
        return LEAVES[start]
    k = _split(n)
    return _sha(b"\x01" + _mth(start, start + k) + _mth(start + k, end))


def _path(m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]), RFC 9162 §2.1.3.1."""
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, start, start + k), _mth(start + k, end)]
    return [*_path(m - k, start + k, end), _mth(start, start + k)]


def _subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b), RFC 9162 §2.1.4.1."""
    n = end - start
    if m == n:
        return [] if b else [_mth(start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, start, start + k, b), _mth(start + k, end)]
    return [*_subproof(m - k, start + k, end, False), _mth(start, start + k)]


def _proof(m: int, n: int) -> list[bytes]:
    return [] if m == 0 else _subproof(m, 0, n, True)


def _node(key: tuple[int, int]) -> bytes:
    level, index = key
    return _mth(index << level, (index + 1) << level)


def _group_hash(item: tuple[int, int] | list[tuple[int, int]]) -> bytes:
    """A Go proof node, or a "rehash" group: the MTH of the joint (contiguous) range of its nodes."""
    if isinstance(item, tuple):
        return _node(item)
    ranges = sorted((index << level, (index + 1) << level) for level, index in item)
    for (_, end), (start, _) in itertools.pairwise(ranges):
        assert end == start, f"rehash group {item} is not contiguous"
    return _mth(ranges[0][0], ranges[-1][1])


def _tree(n: int) -> MemoryTree:
    tree = MemoryTree()
    for i in range(n):
        assert tree.append(b"leaf %d" % i) == i
    return tree


BIG = _tree(MAX)
GO8 = MemoryTree()
for _data in LEAF_INPUTS:
    GO8.append(_data)


def _flip(proof: Sequence[bytes], i: int, mask: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ mask]) + out[i][1:]
    return out


def _rejects(fn: Callable[..., bool], *args: object) -> bool:
    """A verifier refuses: False, or ValueError for arguments no tree can have."""
    try:
        return fn(*args) is False
    except ValueError:
        return True


# --- hashes ----------------------------------------------------------------------------------------------------------


def test_rfc6962_hasher_vectors() -> None:
    assert EMPTY_ROOT == EMPTY_TREE_HASH
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456") == h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


def test_hasher_domain_separation() -> None:
    one, two = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert one != two
    assert node_hash(one, two) != leaf_hash(one + two)
    assert node_hash(one, two) != node_hash(two, one)


def test_go_leaf_hashes() -> None:
    assert [leaf_hash(data) for data in LEAF_INPUTS] == NODE_HASHES[0]


# --- roots -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(9))
def test_go_root_hashes(size: int) -> None:
    hashes = [leaf_hash(data) for data in LEAF_INPUTS[:size]]
    assert root(hashes) == ROOT_HASHES[size]
    assert GO8.root(size) == ROOT_HASHES[size]
    tree = MemoryTree()
    for data in LEAF_INPUTS[:size]:
        tree.append(data)
    assert tree.size == size
    assert tree.root() == ROOT_HASHES[size]


def test_go_node_hashes_are_the_complete_subtrees() -> None:
    hashes = [leaf_hash(data) for data in LEAF_INPUTS]
    for level, row in enumerate(NODE_HASHES):
        for index, want in enumerate(row):
            assert root(hashes[index << level : (index + 1) << level]) == want


def test_empty_tree() -> None:
    assert root([]) == EMPTY_TREE_HASH
    assert root_from_frontier([]) == EMPTY_TREE_HASH
    assert MemoryTree().root() == EMPTY_TREE_HASH
    assert MemoryTree().size == 0
    assert range_keys(0, 0) == []


def test_size_one_root_is_the_leaf_hash() -> None:
    tree = MemoryTree()
    tree.append(b"data")
    assert tree.root() == leaf_hash(b"data") == root([leaf_hash(b"data")])
    assert tree.inclusion_proof(0, 1) == []


@pytest.mark.parametrize("size", [1, 2, 4, 8, 16, 32, 64, 128, 256])
def test_power_of_two_root_is_a_plain_node(size: int) -> None:
    hashes = LEAVES[:size]
    if size > 1:
        assert root(hashes) == node_hash(root(hashes[: size // 2]), root(hashes[size // 2 :]))
    assert BIG.root(size) == _mth(0, size)
    assert range_keys(0, size) == [(size.bit_length() - 1, 0)]


def test_golden_roots_memory_tree_and_frontier() -> None:
    tree = MemoryTree()
    frontier: list[bytes] = []
    for i in range(max(GOLDEN_ROOTS)):
        leaf = _golden_leaf(i)
        tree.append(leaf)
        frontier, _ = append(frontier, i, leaf_hash(leaf))
        want = GOLDEN_ROOTS.get(i + 1)
        if want is not None:
            assert base64.b64encode(root_from_frontier(frontier)).decode() == want, i + 1
    for size, want in GOLDEN_ROOTS.items():
        assert base64.b64encode(tree.root(size)).decode() == want, size
    assert base64.b64encode(tree.root()).decode() == GOLDEN_ROOTS[65535]


# --- frontier, append, range_keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(9))
def test_go_compact_trees(size: int) -> None:
    assert range_keys(0, size) == COMPACT_TREES[size]
    frontier: list[bytes] = []
    for i, data in enumerate(LEAF_INPUTS[:size]):
        frontier, _ = append(frontier, i, leaf_hash(data))
    assert frontier == [NODE_HASHES[level][index] for level, index in COMPACT_TREES[size]]
    assert root_from_frontier(frontier) == ROOT_HASHES[size]


def test_go_append_stores_every_complete_subtree_once() -> None:
    frontier: list[bytes] = []
    made: list[tuple[tuple[int, int], bytes]] = []
    for i, data in enumerate(LEAF_INPUTS):
        frontier, nodes = append(frontier, i, leaf_hash(data))
        assert nodes[0] == ((0, i), leaf_hash(data))
        made += nodes
    keys = [key for key, _ in made]
    assert len(keys) == len(set(keys)) == 15
    assert dict(made) == {(lvl, i): value for lvl, row in enumerate(NODE_HASHES) for i, value in enumerate(row)}


def _expected_frontier_keys(size: int) -> list[tuple[int, int]]:
    keys, position = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            keys.append((level, position >> level))
            position += 1 << level
    return keys


def test_append_frontier_and_stored_nodes_up_to_300() -> None:
    frontier: list[bytes] = []
    seen: set[tuple[int, int]] = set()
    for size in range(MAX):
        assert range_keys(0, size) == _expected_frontier_keys(size)
        assert frontier == [_node(key) for key in _expected_frontier_keys(size)]
        assert root_from_frontier(frontier) == _mth(0, size) == BIG.root(size)
        frontier, made = append(frontier, size, LEAVES[size])
        completed = [(0, size)] + [
            (level, ((size + 1) >> level) - 1) for level in range(1, 10) if (size + 1) % (1 << level) == 0
        ]
        assert [key for key, _ in made] == completed
        for key, value in made:
            assert value == _node(key)
            assert key not in seen
            seen.add(key)
    assert len(seen) == sum(MAX >> level for level in range(MAX.bit_length()))


@st.composite
def _subtree_ranges(draw: st.DrawFn) -> tuple[int, int]:
    level = draw(st.integers(0, 8))
    index = draw(st.integers(0, (MAX - 1) >> level))
    start = index << level
    end = draw(st.integers(start + 1, min(start + (1 << level), MAX)))
    return start, end


@settings(deadline=None)
@given(_subtree_ranges())
def test_range_keys_fold_to_the_subtree_root(bounds: tuple[int, int]) -> None:
    start, end = bounds
    keys = range_keys(start, end)
    position = start
    for level, index in keys:
        assert index << level == position
        position += 1 << level
    assert position == end
    levels = [level for level, _ in keys]
    assert levels == sorted(set(levels), reverse=True)
    hashes = [_node(key) for key in keys]
    folded = hashes[-1]
    for left in reversed(hashes[:-1]):
        folded = _sha(b"\x01" + left + folded)
    assert folded == _mth(start, end)


@given(st.integers(0, 5000), st.integers(0, 5000))
def test_range_keys_any_range_is_an_exact_cover_or_refused(a: int, b: int) -> None:
    start, end = min(a, b), max(a, b)
    try:
        keys = range_keys(start, end)
    except ValueError:
        return
    position = start
    for level, index in keys:
        assert level >= 0
        assert index << level == position
        position += 1 << level
    assert position == end


def test_range_keys_bad_arguments() -> None:
    with pytest.raises(ValueError):
        range_keys(5, 3)
    with pytest.raises(ValueError):
        range_keys(-1, 2)
    with pytest.raises(ValueError):
        range_keys(-4, -1)


def test_append_negative_size() -> None:
    with pytest.raises(ValueError):
        append([], -1, LEAVES[0])


@settings(deadline=None, max_examples=60)
@given(st.lists(st.binary(max_size=6), max_size=MAX))
def test_memory_tree_and_frontier_match_the_reference(entries: list[bytes]) -> None:
    hashes = [_sha(b"\x00" + entry) for entry in entries]
    tree = MemoryTree()
    frontier: list[bytes] = []
    for i, entry in enumerate(entries):
        assert tree.append(entry) == i
        frontier, _ = append(frontier, i, leaf_hash(entry))
    assert tree.size == len(entries)
    assert tree.root() == root(hashes) == _mth_of(hashes) == root_from_frontier(frontier)


# --- inclusion proofs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_go_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    assert GO8.inclusion_proof(index, size) == proof
    assert verify_inclusion(index, size, leaf_hash(LEAF_INPUTS[index]), proof, ROOT_HASHES[size])


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_go_corrupted_inclusion_proofs(index: int, size: int, proof: list[bytes]) -> None:
    """verify_test.go corruptInclusionProof: every probe must be refused."""
    leaf, good_root = leaf_hash(LEAF_INPUTS[index]), ROOT_HASHES[size]
    probes = [
        (index - 1, size, good_root, leaf, proof),
        (index + 1, size, good_root, leaf, proof),
        (index ^ 2, size, good_root, leaf, proof),
        (index, size * 2, good_root, leaf, proof),
        (index, size // 2, good_root, leaf, proof),
        (index, size, good_root, b"WrongLeaf", proof),
        (index, size, EMPTY_TREE_HASH, leaf, proof),
        (index, size, SOME_HASH, leaf, proof),
        (index, size, good_root, leaf, [*proof, b""]),
        (index, size, good_root, leaf, [*proof, good_root]),
        (index, size, good_root, leaf, [b"", *proof]),
        (index, size, good_root, leaf, [good_root, *proof]),
    ]
    probes += [(index, size, good_root, leaf, _flip(proof, i, 8)) for i in range(len(proof))]
    if proof:
        probes.append((index, size, good_root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append((index, size, good_root, leaf, [proof[0], SOME_HASH, *proof[1:]]))
    for i, (idx, sz, rt, lf, pr) in enumerate(probes):
        assert _rejects(verify_inclusion, idx, sz, lf, pr, rt), f"probe {i} verified"


def test_go_inclusion_single_entry() -> None:
    value = leaf_hash(b"data")
    assert verify_inclusion(0, 1, value, [], value) is True
    assert verify_inclusion(0, 1, b"", [], value) is False
    assert verify_inclusion(0, 1, value, [], b"") is False
    assert verify_inclusion(0, 1, b"", [], b"") is False


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_go_inclusion_bad_roots(index: int, size: int) -> None:
    assert _rejects(verify_inclusion, index, size, SOME_HASH, [], b"")
    assert _rejects(verify_inclusion, index, size, b"", [], EMPTY_TREE_HASH)
    assert _rejects(verify_inclusion, index, size, SOME_HASH, [], EMPTY_TREE_HASH)


@pytest.mark.parametrize(("size", "index", "nodes"), INCLUSION_NODES)
def test_go_inclusion_nodes(size: int, index: int, nodes: list) -> None:
    proof = BIG.inclusion_proof(index, size)
    assert proof == [_group_hash(item) for item in nodes]
    assert proof == _path(index, 0, size)
    assert verify_inclusion(index, size, LEAVES[index], proof, _mth(0, size))


@pytest.mark.parametrize(("size", "index"), INCLUSION_ERRORS)
def test_go_inclusion_errors(size: int, index: int) -> None:
    with pytest.raises(ValueError):
        BIG.inclusion_proof(index, size)


def test_inclusion_bad_arguments() -> None:
    with pytest.raises(ValueError):
        BIG.inclusion_proof(-1, 10)
    with pytest.raises(ValueError):
        BIG.inclusion_proof(0, MAX + 1)
    with pytest.raises(ValueError):
        BIG.inclusion_proof(0, -1)
    with pytest.raises(ValueError):
        BIG.root(MAX + 1)
    with pytest.raises(ValueError):
        BIG.root(-1)


@st.composite
def _size_and_index(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return size, draw(st.integers(0, size - 1))


@settings(deadline=None, max_examples=150)
@given(_size_and_index(), st.data())
def test_inclusion_property(size_index: tuple[int, int], data: st.DataObject) -> None:
    size, index = size_index
    proof = BIG.inclusion_proof(index, size)
    good_root = _mth(0, size)
    assert proof == _path(index, 0, size)
    assert verify_inclusion(index, size, LEAVES[index], proof, good_root) is True
    for other in range(size):
        if other != index:
            assert verify_inclusion(other, size, LEAVES[index], proof, good_root) is False, other
    assert verify_inclusion(index, size, LEAVES[(index + 1) % MAX], proof, good_root) is False
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        byte = data.draw(st.integers(0, 31))
        bad = list(proof)
        bad[i] = bad[i][:byte] + bytes([bad[i][byte] ^ 1]) + bad[i][byte + 1 :]
        assert verify_inclusion(index, size, LEAVES[index], bad, good_root) is False
        assert verify_inclusion(index, size, LEAVES[index], proof[:-1], good_root) is False
    assert verify_inclusion(index, size, LEAVES[index], [*proof, SOME_HASH], good_root) is False
    assert verify_inclusion(index, size, LEAVES[index], proof, _flip([good_root], 0, 1)[0]) is False
    assert verify_inclusion(index, size, LEAVES[index], proof, _mth(0, size - 1)) is False


# --- consistency proofs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS)
def test_go_consistency_proofs(old: int, new: int, proof: list[bytes]) -> None:
    assert GO8.consistency_proof(old, new) == proof
    assert verify_consistency(old, new, ROOT_HASHES[old], ROOT_HASHES[new], proof) is True


@pytest.mark.parametrize(("old", "new", "proof"), [p for p in CONSISTENCY_PROOFS if p[2]])
def test_go_corrupted_consistency_proofs(old: int, new: int, proof: list[bytes]) -> None:
    """verify_test.go corruptConsistencyProof: every probe must be refused."""
    r1, r2 = ROOT_HASHES[old], ROOT_HASHES[new]
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    probes += [(old, new, r1, r2, _flip(proof, i, 16)) for i in range(len(proof))]
    for i, (s1, s2, a, b, pr) in enumerate(probes):
        assert _rejects(verify_consistency, s1, s2, a, b, pr), f"probe {i} verified"


ROOT1, ROOT2 = _sha(b"don't care 1"), _sha(b"don't care 2")


@pytest.mark.parametrize(
    ("old", "new", "r1", "r2", "proof", "ok"),
    [
        (0, 0, ROOT1, ROOT2, [], False),
        (1, 1, ROOT1, ROOT2, [], False),
        (0, 0, ROOT1, ROOT1, [], True),
        (0, 1, ROOT1, ROOT2, [], True),
        (1, 1, ROOT2, ROOT2, [], True),
        (1, 0, ROOT1, ROOT2, [], False),
        (2, 1, ROOT1, ROOT2, [], False),
        (1, 2, ROOT1, ROOT2, [], False),
        (0, 0, EMPTY_TREE_HASH, ROOT2, [], False),
        (1, 1, EMPTY_TREE_HASH, ROOT2, [], False),
        (0, 0, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH], False),
        (0, 1, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH], False),
        (1, 1, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [EMPTY_TREE_HASH], False),
    ],
)
def test_go_verify_consistency_table(old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes], ok: bool) -> None:
    if ok:
        assert verify_consistency(old, new, r1, r2, proof) is True
    else:
        assert _rejects(verify_consistency, old, new, r1, r2, proof)


@pytest.mark.parametrize(("old", "new", "nodes"), CONSISTENCY_NODES)
def test_go_consistency_nodes(old: int, new: int, nodes: list) -> None:
    proof = BIG.consistency_proof(old, new)
    assert proof == [_group_hash(item) for item in nodes]
    assert proof == _proof(old, new)
    assert verify_consistency(old, new, _mth(0, old), _mth(0, new), proof) is True


@pytest.mark.parametrize(("old", "new"), CONSISTENCY_ERRORS)
def test_go_consistency_errors(old: int, new: int) -> None:
    with pytest.raises(ValueError):
        BIG.consistency_proof(old, new)


def test_consistency_bad_arguments_and_trivial_proofs() -> None:
    with pytest.raises(ValueError):
        BIG.consistency_proof(-1, 5)
    with pytest.raises(ValueError):
        BIG.consistency_proof(0, MAX + 1)
    assert BIG.consistency_proof(0, 17) == []
    assert BIG.consistency_proof(0, 0) == []
    assert BIG.consistency_proof(17, 17) == []
    assert verify_consistency(0, 17, SOME_HASH, _mth(0, 17), []) is True
    assert verify_consistency(17, 17, _mth(0, 17), _mth(0, 17), []) is True
    assert verify_consistency(17, 17, _mth(0, 17), _mth(0, 16), []) is False
    assert verify_consistency(17, 17, _mth(0, 17), _mth(0, 17), [SOME_HASH]) is False
    assert _rejects(verify_consistency, 18, 17, _mth(0, 18), _mth(0, 17), [])


@st.composite
def _old_and_new(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(1, MAX))
    return draw(st.integers(0, new)), new


@settings(deadline=None, max_examples=200)
@given(_old_and_new())
def test_consistency_property(sizes: tuple[int, int]) -> None:
    old, new = sizes
    proof = BIG.consistency_proof(old, new)
    r1, r2 = _mth(0, old), _mth(0, new)
    assert proof == _proof(old, new)
    assert verify_consistency(old, new, r1, r2, proof) is True
    if old == 0 or old == new:
        assert proof == []
    for i in range(len(proof)):
        for byte in (0, 31):
            bad = list(proof)
            bad[i] = bad[i][:byte] + bytes([bad[i][byte] ^ 0x80]) + bad[i][byte + 1 :]
            assert verify_consistency(old, new, r1, r2, bad) is False, (i, byte)
    if 0 < old:
        assert verify_consistency(old, new, _flip([r1], 0, 1)[0], r2, proof) is False
        assert verify_consistency(old, new, r1, _flip([r2], 0, 1)[0], proof) is False
    if 0 < old < new:
        assert verify_consistency(old, new, r2, r1, proof) is False
        assert verify_consistency(old, new, r1, r2, [*proof, SOME_HASH]) is False
        assert verify_consistency(old, new, r1, r2, proof[:-1]) is False
