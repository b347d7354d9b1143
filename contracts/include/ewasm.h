/*
 * ewasm.h — the contract SDK for C: the Ethereum Environment Interface (EEI)
 * imports, a small 256-bit integer, Ethereum ABI helpers and storage helpers.
 *
 * Build with `ewasm compile FILE.c` (see contracts/build.py). One contract is
 * one translation unit: this header defines memcpy/memset itself (there is no
 * libc), so include it from exactly one .c file.
 *
 * Conventions (ewasm): the module imports only from "ethereum", exports
 * exactly `main` (no params, no results) and `memory`, has no start function
 * and uses no floats. Addresses are 20 bytes; values and balances are 128-bit
 * little-endian; storage keys and values are 32 raw bytes.
 *
 * A contract writes
 *
 *     #include "ewasm.h"
 *     EWASM_MAIN { ... }             // the runtime code's `main`
 *     EWASM_CONSTRUCTOR { ... }      // optional: runs once at deployment
 *
 * `ewasm compile FILE.c --deployer` compiles the file twice: first the runtime
 * module, then (with EWASM_DEPLOYER defined and the runtime bytes in
 * `ewasm_runtime_code`) an init module whose `main` runs the constructor and
 * returns the runtime code through `finish`.
 */
#ifndef EWASM_H
#define EWASM_H

#include <stddef.h>
#include <stdint.h>

#define EWASM_INLINE static inline __attribute__((always_inline))

/* ------------------------------------------------------------------------ */
/* The EEI: 33 host functions, import module "ethereum", exact ewasm names. */
/* ------------------------------------------------------------------------ */

#define EEI_IMPORT(name) __attribute__((import_module("ethereum"), import_name(#name)))

EEI_IMPORT(useGas) void eth_useGas(int64_t amount);
EEI_IMPORT(getGasLeft) int64_t eth_getGasLeft(void);

EEI_IMPORT(getAddress) void eth_getAddress(uint8_t *result20);
EEI_IMPORT(getCaller) void eth_getCaller(uint8_t *result20);
EEI_IMPORT(getCallValue) void eth_getCallValue(uint8_t *result16);
EEI_IMPORT(getTxOrigin) void eth_getTxOrigin(uint8_t *result20);
EEI_IMPORT(getTxGasPrice) void eth_getTxGasPrice(uint8_t *result16);
EEI_IMPORT(getExternalBalance) void eth_getExternalBalance(const uint8_t *address20, uint8_t *result16);

EEI_IMPORT(getBlockCoinbase) void eth_getBlockCoinbase(uint8_t *result20);
EEI_IMPORT(getBlockDifficulty) void eth_getBlockDifficulty(uint8_t *result32);
EEI_IMPORT(getBlockGasLimit) int64_t eth_getBlockGasLimit(void);
EEI_IMPORT(getBlockNumber) int64_t eth_getBlockNumber(void);
EEI_IMPORT(getBlockTimestamp) int64_t eth_getBlockTimestamp(void);
/* 0 on success, 1 when the block is not among the last 256. */
EEI_IMPORT(getBlockHash) int32_t eth_getBlockHash(int64_t number, uint8_t *result32);

EEI_IMPORT(storageStore) void eth_storageStore(const uint8_t *key32, const uint8_t *value32);
EEI_IMPORT(storageLoad) void eth_storageLoad(const uint8_t *key32, uint8_t *result32);

EEI_IMPORT(getCallDataSize) uint32_t eth_getCallDataSize(void);
EEI_IMPORT(callDataCopy) void eth_callDataCopy(void *result, uint32_t dataOffset, uint32_t length);
EEI_IMPORT(getCodeSize) uint32_t eth_getCodeSize(void);
EEI_IMPORT(codeCopy) void eth_codeCopy(void *result, uint32_t codeOffset, uint32_t length);
EEI_IMPORT(getExternalCodeSize) uint32_t eth_getExternalCodeSize(const uint8_t *address20);
EEI_IMPORT(externalCodeCopy)
void eth_externalCodeCopy(const uint8_t *address20, void *result, uint32_t codeOffset, uint32_t length);
EEI_IMPORT(getReturnDataSize) uint32_t eth_getReturnDataSize(void);
EEI_IMPORT(returnDataCopy) void eth_returnDataCopy(void *result, uint32_t dataOffset, uint32_t length);

/* Calls return 0 on success, 1 on failure, 2 on revert. */
EEI_IMPORT(call)
int32_t eth_call(int64_t gas, const uint8_t *address20, const uint8_t *value16, const void *data, uint32_t length);
EEI_IMPORT(callCode)
int32_t eth_callCode(int64_t gas, const uint8_t *address20, const uint8_t *value16, const void *data, uint32_t length);
EEI_IMPORT(callDelegate)
int32_t eth_callDelegate(int64_t gas, const uint8_t *address20, const void *data, uint32_t length);
EEI_IMPORT(callStatic)
int32_t eth_callStatic(int64_t gas, const uint8_t *address20, const void *data, uint32_t length);
/* 0 on success (new address written to result20), 1 on failure, 2 on revert. */
EEI_IMPORT(create)
int32_t eth_create(const uint8_t *value16, const void *data, uint32_t length, uint8_t *result20);

/* Topics are pointers to 32-byte words; unused ones are ignored. */
EEI_IMPORT(log)
void eth_log(const void *data, uint32_t length, uint32_t numberOfTopics, const uint8_t *topic1,
             const uint8_t *topic2, const uint8_t *topic3, const uint8_t *topic4);

EEI_IMPORT(finish) __attribute__((noreturn)) void eth_finish(const void *data, uint32_t length);
EEI_IMPORT(revert) __attribute__((noreturn)) void eth_revert(const void *data, uint32_t length);
EEI_IMPORT(selfDestruct) __attribute__((noreturn)) void eth_selfDestruct(const uint8_t *beneficiary20);

/* ------------------------------------------------------------------------ */
/* No libc: the few memory routines clang may call.                          */
/* ------------------------------------------------------------------------ */

/* clang lowers struct copies and large __builtin_memcpy/memset to calls of
 * these symbols, so they must exist; --gc-sections drops them when unused. */
void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    while (n--) *d++ = *s++;
    return dst;
}

void *memset(void *dst, int c, size_t n) {
    uint8_t *d = (uint8_t *)dst;
    while (n--) *d++ = (uint8_t)c;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
    uint8_t *d = (uint8_t *)dst;
    const uint8_t *s = (const uint8_t *)src;
    if (d < s) {
        while (n--) *d++ = *s++;
    } else {
        d += n;
        s += n;
        while (n--) *--d = *--s;
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
    const uint8_t *x = (const uint8_t *)a, *y = (const uint8_t *)b;
    for (; n; n--, x++, y++)
        if (*x != *y) return *x < *y ? -1 : 1;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* u256: an unsigned 256-bit integer as four 64-bit limbs, least first.      */
/* ------------------------------------------------------------------------ */

typedef struct {
    uint64_t w[4];
} u256;

EWASM_INLINE u256 u256_from_u64(uint64_t v) {
    u256 r = {{v, 0, 0, 0}};
    return r;
}

EWASM_INLINE int u256_is_zero(u256 a) { return (a.w[0] | a.w[1] | a.w[2] | a.w[3]) == 0; }

EWASM_INLINE int u256_fits_u64(u256 a) { return (a.w[1] | a.w[2] | a.w[3]) == 0; }

EWASM_INLINE int u256_eq(u256 a, u256 b) {
    return ((a.w[0] ^ b.w[0]) | (a.w[1] ^ b.w[1]) | (a.w[2] ^ b.w[2]) | (a.w[3] ^ b.w[3])) == 0;
}

/* a < b */
EWASM_INLINE int u256_lt(u256 a, u256 b) {
    for (int i = 3; i >= 0; i--)
        if (a.w[i] != b.w[i]) return a.w[i] < b.w[i];
    return 0;
}

/* r = a + b mod 2^256; returns the carry out (1 on overflow). */
EWASM_INLINE int u256_add(u256 *r, u256 a, u256 b) {
    uint64_t carry = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t s = a.w[i] + carry;
        uint64_t c1 = s < carry;
        r->w[i] = s + b.w[i];
        carry = c1 | (r->w[i] < s);
    }
    return (int)carry;
}

/* r = a - b mod 2^256; returns the borrow out (1 when b > a). */
EWASM_INLINE int u256_sub(u256 *r, u256 a, u256 b) {
    uint64_t borrow = 0;
    for (int i = 0; i < 4; i++) {
        uint64_t d = a.w[i] - b.w[i];
        uint64_t b1 = a.w[i] < b.w[i];
        r->w[i] = d - borrow;
        borrow = b1 | (d < borrow);
    }
    return (int)borrow;
}

/* Byte-reverse a 64-bit word (MVP wasm has no bswap instruction). clang
 * recognises the idiom, which lets it cancel a swap that is undone later. */
EWASM_INLINE uint64_t ewasm_bswap64(uint64_t x) {
    x = ((x & 0x00ff00ff00ff00ffull) << 8) | ((x >> 8) & 0x00ff00ff00ff00ffull);
    x = ((x & 0x0000ffff0000ffffull) << 16) | ((x >> 16) & 0x0000ffff0000ffffull);
    return (x << 32) | (x >> 32);
}

/* Big-endian 32-byte word (EVM and ABI order) -> u256. */
EWASM_INLINE u256 u256_from_be(const uint8_t *be32) {
    u256 r;
    for (int i = 0; i < 4; i++) {
        uint64_t v;
        __builtin_memcpy(&v, be32 + (3 - i) * 8, 8); /* one unaligned little-endian load */
        r.w[i] = ewasm_bswap64(v);
    }
    return r;
}

/* u256 -> big-endian 32-byte word. */
EWASM_INLINE void u256_to_be(u256 a, uint8_t *be32) {
    for (int i = 0; i < 4; i++) {
        uint64_t v = ewasm_bswap64(a.w[i]);
        __builtin_memcpy(be32 + (3 - i) * 8, &v, 8);
    }
}

/* ------------------------------------------------------------------------ */
/* Ethereum ABI: selector dispatch, argument decoding, return encoding.      */
/* ------------------------------------------------------------------------ */

/* Revert with no data: what the ABI does on bad input. */
__attribute__((noreturn)) EWASM_INLINE void ewasm_fail(void) { eth_revert((const void *)0, 0); }

/* Calldata is copied into memory once, by abi_selector: every host call
 * costs a trip out of wasm, so arguments are then read from this buffer.
 * Define EWASM_CALLDATA_CAP before including this header to buffer more; words
 * beyond the cap are fetched with callDataCopy. */
#ifndef EWASM_CALLDATA_CAP
#define EWASM_CALLDATA_CAP (4 + 32 * 8)
#endif
static uint8_t ewasm_calldata[EWASM_CALLDATA_CAP];
static uint32_t ewasm_calldata_size;

/* The first four calldata bytes as a big-endian number; reverts when the
 * calldata is shorter than a selector. Call it before reading arguments. */
EWASM_INLINE uint32_t abi_selector(void) {
    uint32_t size = eth_getCallDataSize();
    if (size < 4) ewasm_fail();
    ewasm_calldata_size = size;
    eth_callDataCopy(ewasm_calldata, 0, size < EWASM_CALLDATA_CAP ? size : EWASM_CALLDATA_CAP);
    const uint8_t *s = ewasm_calldata;
    return ((uint32_t)s[0] << 24) | ((uint32_t)s[1] << 16) | ((uint32_t)s[2] << 8) | s[3];
}

/* Copy the index-th 32-byte head word after the selector; reverts when the
 * calldata is too short (as Solidity and Vyper do). */
EWASM_INLINE void abi_arg_word(uint32_t index, uint8_t *out32) {
    uint32_t offset = 4 + 32 * index;
    if (index >= (1u << 26) || ewasm_calldata_size < offset + 32) ewasm_fail();
    if (offset + 32 <= EWASM_CALLDATA_CAP) {
        __builtin_memcpy(out32, ewasm_calldata + offset, 32); /* inlined: four i64 moves */
    } else {
        eth_callDataCopy(out32, offset, 32);
    }
}

EWASM_INLINE u256 abi_arg_u256(uint32_t index) {
    uint8_t word[32];
    abi_arg_word(index, word);
    return u256_from_be(word);
}

/* A uint256 argument that must fit in 64 bits; larger values revert. */
EWASM_INLINE uint64_t abi_arg_u64(uint32_t index) {
    u256 v = abi_arg_u256(index);
    if (!u256_fits_u64(v)) ewasm_fail();
    return v.w[0];
}

/* An address argument: the word's upper 12 bytes must be zero (else revert),
 * the low 20 bytes are the address. */
EWASM_INLINE void abi_arg_address(uint32_t index, uint8_t *out20) {
    uint8_t word[32];
    abi_arg_word(index, word);
    uint64_t high;
    uint32_t mid;
    __builtin_memcpy(&high, word, 8);
    __builtin_memcpy(&mid, word + 8, 4);
    if (high | mid) ewasm_fail();
    __builtin_memcpy(out20, word + 12, 20);
}

/* Left-pad a 20-byte address to a 32-byte word (ABI, log topics). */
EWASM_INLINE void abi_address_word(const uint8_t *address20, uint8_t *out32) {
    __builtin_memset(out32, 0, 12);
    __builtin_memcpy(out32 + 12, address20, 20);
}

__attribute__((noreturn)) EWASM_INLINE void abi_return_u256(u256 v) {
    uint8_t out[32];
    u256_to_be(v, out);
    eth_finish(out, 32);
}

__attribute__((noreturn)) EWASM_INLINE void abi_return_u64(uint64_t v) { abi_return_u256(u256_from_u64(v)); }

__attribute__((noreturn)) EWASM_INLINE void abi_return_bool(int v) { abi_return_u64(v ? 1 : 0); }

/* ------------------------------------------------------------------------ */
/* Storage: 32-byte keys, values as big-endian uint256 words (as the EVM).   */
/* ------------------------------------------------------------------------ */

EWASM_INLINE u256 storage_load_u256(const uint8_t *key32) {
    uint8_t value[32];
    eth_storageLoad(key32, value);
    return u256_from_be(value);
}

EWASM_INLINE void storage_store_u256(const uint8_t *key32, u256 v) {
    uint8_t value[32];
    u256_to_be(v, value);
    eth_storageStore(key32, value);
}

/* A key for a per-address mapping: byte 0 names the mapping (slot), bytes
 * 1..11 are zero, bytes 12..31 are the address. Distinct slots never collide,
 * and no keccak is needed, which keeps a storage access to one host call. */
EWASM_INLINE void storage_key_address(uint8_t slot, const uint8_t *address20, uint8_t *key32) {
    abi_address_word(address20, key32);
    key32[0] = slot;
}

/* A key for a single value: byte 31 is the slot, the rest zero. */
EWASM_INLINE void storage_key_slot(uint8_t slot, uint8_t *key32) {
    __builtin_memset(key32, 0, 31);
    key32[31] = slot;
}

/* ------------------------------------------------------------------------ */
/* Entry points: runtime `main` and the optional deployment constructor.     */
/* ------------------------------------------------------------------------ */

#define EWASM_EXPORT(name) __attribute__((export_name(#name)))

#ifdef EWASM_DEPLOYER
/* Deployer build: the runtime `main` is compiled but not exported (and
 * dropped by the linker); the init `main` runs the constructor and returns
 * the runtime code, which the build put in `ewasm_runtime_code`. */
extern const uint8_t ewasm_runtime_code[];
extern const uint32_t ewasm_runtime_size;
#define EWASM_MAIN static __attribute__((unused)) void ewasm_runtime_main(void)
#define EWASM_CONSTRUCTOR                                                      \
    static void ewasm_constructor(void);                                       \
    EWASM_EXPORT(main) void ewasm_deploy_main(void) {                          \
        ewasm_constructor();                                                   \
        eth_finish(ewasm_runtime_code, ewasm_runtime_size);                    \
    }                                                                          \
    static void ewasm_constructor(void)
#else
#define EWASM_MAIN EWASM_EXPORT(main) void ewasm_main(void)
#define EWASM_CONSTRUCTOR static __attribute__((unused)) void ewasm_constructor(void)
#endif

#endif /* EWASM_H */
