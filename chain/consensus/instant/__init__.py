"""The instant engine (one node, development)."""
