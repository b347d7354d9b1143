"""Gas prices of the host interface: the EVM's Byzantium schedule, as ewasm uses it.

Each EEI function costs what its EVM opcode costs, so that wasm gas and EVM gas can be
compared. Transaction-level rules (intrinsic gas, refunds, code deposit) are here too.
"""

from __future__ import annotations

BASE = 2  # environment reads: getAddress, getCaller, getBlockNumber, ...
VERY_LOW = 3  # base of the copies
COPY_WORD = 3  # per 32-byte word copied
BALANCE = 400
EXTCODE = 700  # getExternalCodeSize, externalCodeCopy (+ COPY_WORD per word)
BLOCKHASH = 20  # Byzantium's BLOCKHASH opcode; the EEI's getBlockHash costs EEI_BLOCKHASH (below)
SLOAD = 200
SSTORE_SET = 20000  # zero -> non-zero
SSTORE_RESET = 5000  # any other write
SSTORE_CLEAR_REFUND = 15000  # non-zero -> zero
CALL = 700
CALL_VALUE = 9000
CALL_NEW_ACCOUNT = 25000
CALL_STIPEND = 2300
CREATE = 32000
CODE_DEPOSIT = 200  # per byte of stored runtime code
SELFDESTRUCT = 5000
SELFDESTRUCT_REFUND = 24000
LOG = 375
LOG_TOPIC = 375
LOG_DATA = 8
# shard.sendReceipt: a value transfer (CALL + CALL_VALUE) plus log-priced payload bytes.
# The receiver's side is free (its shard runs the delivery), so the sender pays here.
SEND_RECEIPT = CALL + CALL_VALUE
RECEIPT_PAYLOAD_BYTE = LOG_DATA
MAX_RECEIPT_PAYLOAD = 4096  # bytes; a delivery carries its payload through two blocks

# Where ewasm's EEI specification (and Hera, its reference host) prices a function
# differently from the Byzantium opcode, the specification wins. There is one such case:
# getBlockHash costs 800, where BLOCKHASH costs 20. As it changes what every node
# computes, the price comes with the cost table (its "eei" section, from default-v2 on);
# a chain on default-v1 keeps 20.
EEI_BLOCKHASH = 800

# EIP-170: the most runtime code a creation may store (`ewasm statetest`; a chain applies
# its spec's maxCodeSize instead).
EIP170_MAX_CODE_SIZE = 24_576

TX = 21000
TX_CREATE = 53000
TX_DATA_ZERO = 4
TX_DATA_NONZERO = 68

MAX_CALL_DEPTH = 1024

# Precompile prices (EVM).
ECRECOVER = 3000
SHA256_BASE, SHA256_WORD = 60, 12
RIPEMD160_BASE, RIPEMD160_WORD = 600, 120
IDENTITY_BASE, IDENTITY_WORD = 15, 3
KECCAK256_BASE, KECCAK256_WORD = 30, 6  # ewasm's keccak precompile, priced like SHA3


def words(length: int) -> int:
    """Number of 32-byte words needed for `length` bytes."""
    return (length + 31) >> 5


def copy_cost(length: int, base: int = VERY_LOW) -> int:
    """A copy of `length` bytes: the base plus 3 per word."""
    return base + COPY_WORD * ((length + 31) >> 5)


def log_cost(topics: int, length: int) -> int:
    return LOG + LOG_TOPIC * topics + LOG_DATA * length


def intrinsic_gas(data: bytes, is_create: bool) -> int:
    """What a transaction costs before any code runs."""
    zeros = data.count(0)
    base = TX_CREATE if is_create else TX
    return base + TX_DATA_ZERO * zeros + TX_DATA_NONZERO * (len(data) - zeros)


def all_but_one_64th(gas: int) -> int:
    """EIP-150: the most gas a frame may pass on to a call or create."""
    return gas - gas // 64
