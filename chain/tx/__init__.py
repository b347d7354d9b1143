"""Transactions: the type, its codec, the errors, signing and validation."""
