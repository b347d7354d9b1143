/*
 * workloads.c — compute workloads that mirror the EVM benchmark's Vyper
 * contract (contracts/evm/). Every function takes one ABI uint256 N and
 * returns one ABI uint256; N >= 2^64 reverts. Exact definitions (the EVM side
 * must compute the same outputs):
 *
 *   sumOfSquares(uint256 n)            0x520f3971
 *       (1^2 + 2^2 + ... + n^2) mod 2^64; 0 for n = 0.
 *   fib(uint256 n)                     0xc6c2ea17
 *       F(n) mod 2^64 with F(0) = 0, F(1) = 1, computed iteratively:
 *       a, b = 0, 1; n times: a, b = b, (a + b) mod 2^64; return a.
 *   keccakRounds(uint256 n)            0x0666ca0e
 *       h = 32 zero bytes; n times: h = keccak256(h) (32-byte input);
 *       return h as a uint256 (the 32 digest bytes, big-endian), so n = 0
 *       returns 0 and n = 1 returns keccak256(bytes32(0)).
 *       The hash runs inside the contract (keccak.h).
 *   keccakRoundsPrecompile(uint256 n)  0x7c035ab1
 *       The same chain and output, each hash a `call` to the keccak256
 *       precompile at address 0x09.
 *   sha256Precompile(uint256 n)        0xa042242f
 *       DATA = 1024 bytes with DATA[i] = i mod 256. n times:
 *       h = sha256(DATA), each a `call` to the precompile at 0x02 with
 *       the same input; return h (0 for n = 0).
 *
 * Its interface, as NAME.abi.json gives it (contracts/abi.py):
 * @abi function sumOfSquares(uint256 n) view returns (uint256)
 * @abi function fib(uint256 n) view returns (uint256)
 * @abi function keccakRounds(uint256 n) view returns (uint256)
 * @abi function keccakRoundsPrecompile(uint256 n) view returns (uint256)
 * @abi function sha256Precompile(uint256 n) view returns (uint256)
 *
 * Unknown selectors and short calldata revert with empty data; a failed
 * precompile call reverts too.
 */
#include "ewasm.h"
#include "keccak.h"

#define SEL_SUM_OF_SQUARES 0x520f3971u        /* sumOfSquares(uint256) */
#define SEL_FIB 0xc6c2ea17u                   /* fib(uint256) */
#define SEL_KECCAK_ROUNDS 0x0666ca0eu         /* keccakRounds(uint256) */
#define SEL_KECCAK_PRECOMPILE 0x7c035ab1u     /* keccakRoundsPrecompile(uint256) */
#define SEL_SHA256_PRECOMPILE 0xa042242fu     /* sha256Precompile(uint256) */

#define SHA256_INPUT_SIZE 1024

static const uint8_t SHA256_ADDRESS[20] = {[19] = 0x02};
static const uint8_t KECCAK256_ADDRESS[20] = {[19] = 0x09};
static const uint8_t ZERO_VALUE[16];

/* DATA[i] = i mod 256, built by the compiler into the data segment. */
#define B4(i) (i), (i) + 1, (i) + 2, (i) + 3
#define B16(i) B4(i), B4((i) + 4), B4((i) + 8), B4((i) + 12)
#define B64(i) B16(i), B16((i) + 16), B16((i) + 32), B16((i) + 48)
#define B256 B64(0), B64(64), B64(128), B64(192)
static const uint8_t SHA256_INPUT[SHA256_INPUT_SIZE] = {B256, B256, B256, B256};

/* Keep `v` opaque to the optimiser, so clang cannot replace a workload loop
 * by its closed form (it can for sums of polynomials): the loop must run. */
#define OPAQUE(v) __asm__ volatile("" : "+r"(v))

__attribute__((noreturn)) static void sum_of_squares(uint64_t n) {
    uint64_t s = 0;
    for (uint64_t i = n; i != 0; i--) { /* the same terms, counted down */
        OPAQUE(i);
        s += i * i;
    }
    abi_return_u64(s);
}

__attribute__((noreturn)) static void fib(uint64_t n) {
    uint64_t a = 0, b = 1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t c = a + b;
        a = b;
        b = c;
    }
    abi_return_u64(a);
}

__attribute__((noreturn)) static void keccak_rounds(uint64_t n) {
    uint64_t h[4] = {0, 0, 0, 0};
    uint8_t out[32];
    for (uint64_t i = 0; i < n; i++) keccak256_lanes32(h);
    for (int i = 0; i < 4; i++) keccak_store_lane(h[i], out + 8 * i);
    eth_finish(out, 32);
}

/* One precompile call with all gas left; its 32-byte output lands in out32. */
static void call_precompile(const uint8_t *address20, const void *data, uint32_t len, uint8_t *out32) {
    if (eth_call(eth_getGasLeft(), address20, ZERO_VALUE, data, len) != 0) ewasm_fail();
    eth_returnDataCopy(out32, 0, 32);
}

__attribute__((noreturn)) static void keccak_rounds_precompile(uint64_t n) {
    uint8_t h[32] = {0};
    for (uint64_t i = 0; i < n; i++) call_precompile(KECCAK256_ADDRESS, h, 32, h);
    eth_finish(h, 32);
}

__attribute__((noreturn)) static void sha256_precompile(uint64_t n) {
    uint8_t h[32] = {0};
    for (uint64_t i = 0; i < n; i++) call_precompile(SHA256_ADDRESS, SHA256_INPUT, SHA256_INPUT_SIZE, h);
    eth_finish(h, 32);
}

EWASM_MAIN {
    uint32_t selector = abi_selector();
    uint64_t n = abi_arg_u64(0);
    switch (selector) {
    case SEL_SUM_OF_SQUARES:
        sum_of_squares(n);
    case SEL_FIB:
        fib(n);
    case SEL_KECCAK_ROUNDS:
        keccak_rounds(n);
    case SEL_KECCAK_PRECOMPILE:
        keccak_rounds_precompile(n);
    case SEL_SHA256_PRECOMPILE:
        sha256_precompile(n);
    default:
        ewasm_fail();
    }
}
