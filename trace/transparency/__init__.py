"""The instance's public transparency log: every event a leaf of one RFC 9162 Merkle tree, signed checkpoints,
witness cosignatures, proofs. See README ("The public log") for what it proves and what it cannot."""
