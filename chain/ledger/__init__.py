"""The node's chain: genesis, block building and the read queries over it."""
