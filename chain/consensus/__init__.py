"""Consensus: the engine interface, and one folder per engine."""
