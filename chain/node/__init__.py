"""A node: its configuration, and the one place that wires everything together."""
