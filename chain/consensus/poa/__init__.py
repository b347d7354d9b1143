"""Proof of authority."""
