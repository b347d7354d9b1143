"""State: the flat overlay a block executes against, the Merkle commitment and its
proofs, and the lmdb store."""
