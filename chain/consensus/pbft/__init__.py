"""PBFT in the manner of QBFT (Hyperledger Besu): a pure state machine (machine.py)
behind the engine interface, votes counted by round (round_state.py)."""
