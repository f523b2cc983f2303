"""Transparency-log primitives: RFC 9162 Merkle trees and C2SP signed notes (pure, no database)."""
