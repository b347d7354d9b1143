# pragma version ~=0.4.3
"""
@title Compute
@notice The EVM side of the compute benchmarks. Each function mirrors the
        function of the same name and selector in contracts/examples/workloads.c
        (whose header comment gives the exact definitions): the arithmetic
        wraps in 64 bits the way i64 arithmetic does, so both sides return the
        same 32-byte word.
"""

MASK64: constant(uint256) = 2**64 - 1
# The largest N a loop accepts; Vyper loops need a static bound.
MAX_N: constant(uint256) = 10**7


@external
@pure
def sumOfSquares(n: uint256) -> uint256:
    """sum of i*i for i in 1..n, wrapping modulo 2**64."""
    acc: uint256 = 0
    for i: uint256 in range(1, n + 1, bound=MAX_N):
        # i < 2**24, so i*i and acc + i*i stay far below 2**256: unchecked is safe.
        acc = unsafe_add(acc, unsafe_mul(i, i)) & MASK64
    return acc


@external
@pure
def fib(n: uint256) -> uint256:
    """F(n) modulo 2**64, iteratively, with F(0) = 0 and F(1) = 1."""
    a: uint256 = 0
    b: uint256 = 1
    for i: uint256 in range(n, bound=MAX_N):
        t: uint256 = unsafe_add(a, b) & MASK64
        a = b
        b = t
    return a


@external
@pure
def keccakRounds(n: uint256) -> uint256:
    """h = 32 zero bytes, then h = keccak256(h) n times."""
    h: bytes32 = empty(bytes32)
    for i: uint256 in range(n, bound=MAX_N):
        h = keccak256(h)
    return convert(h, uint256)


@external
@pure
def keccakRoundsPrecompile(n: uint256) -> uint256:
    """
    The same chain as keccakRounds. The wasm side computes it through the
    keccak256 precompile at 0x09; on the EVM, keccak256 is an opcode, so this
    is keccakRounds under the wasm function's name and selector.
    """
    h: bytes32 = empty(bytes32)
    for i: uint256 in range(n, bound=MAX_N):
        h = keccak256(h)
    return convert(h, uint256)


# Bytes 0x00..0xff; the sha256 input is this block four times (DATA[i] = i mod 256).
BLOCK: constant(Bytes[256]) = x"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"


@external
@view
def sha256Precompile(n: uint256) -> bytes32:
    """sha256 of the same 1 KiB, n times through precompile 0x02; the last digest (0 for n = 0)."""
    data: Bytes[1024] = concat(BLOCK, BLOCK, BLOCK, BLOCK)
    h: bytes32 = empty(bytes32)
    for i: uint256 in range(n, bound=MAX_N):
        h = sha256(data)
    return h
