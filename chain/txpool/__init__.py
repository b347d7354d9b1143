"""The transaction pool and its admission policy."""
