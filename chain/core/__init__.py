"""Pure data of the chain: hashing, keys, parameters, the chain spec, blocks, receipts and
the logs bloom. Nothing here does I/O."""
