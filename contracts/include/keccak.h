/*
 * keccak.h — Keccak-256 (Ethereum's keccak256: Keccak[c=512] with the
 * original 0x01 padding, not SHA3-256's 0x06) for contracts, in plain C.
 *
 * Include after ewasm.h, from one translation unit. The permutation keeps the
 * 25 lanes in locals (the rounds are written out, so clang turns the arrays
 * into wasm locals): no memory traffic inside a round.
 */
#ifndef EWASM_KECCAK_H
#define EWASM_KECCAK_H

#include <stdint.h>

#define ROTL64(x, n) __builtin_rotateleft64((x), (n))

static const uint64_t KECCAK_RC[24] = {
    0x0000000000000001ull, 0x0000000000008082ull, 0x800000000000808aull, 0x8000000080008000ull,
    0x000000000000808bull, 0x0000000080000001ull, 0x8000000080008081ull, 0x8000000000008009ull,
    0x000000000000008aull, 0x0000000000000088ull, 0x0000000080008009ull, 0x000000008000000aull,
    0x000000008000808bull, 0x800000000000008bull, 0x8000000000008089ull, 0x8000000000008003ull,
    0x8000000000008002ull, 0x8000000000000080ull, 0x000000000000800aull, 0x800000008000000aull,
    0x8000000080008081ull, 0x8000000000008080ull, 0x0000000080000001ull, 0x8000000080008008ull,
};

/* keccak-f[1600] on the state s, lane (x, y) at s[x + 5y]. The rounds are
 * written out so that clang keeps all lanes in wasm locals. (Chi keeps its
 * plain `~b & c` form: engines lower it to one and-not instruction, so the
 * lane-complementing rewrite measured no faster here.) */
static inline __attribute__((always_inline)) void keccakf1600_inline(uint64_t s[25]) {
    uint64_t b[25];
    uint64_t c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;
    for (int round = 0; round < 24; round++) {
        /* theta */
        c0 = s[0] ^ s[5] ^ s[10] ^ s[15] ^ s[20];
        c1 = s[1] ^ s[6] ^ s[11] ^ s[16] ^ s[21];
        c2 = s[2] ^ s[7] ^ s[12] ^ s[17] ^ s[22];
        c3 = s[3] ^ s[8] ^ s[13] ^ s[18] ^ s[23];
        c4 = s[4] ^ s[9] ^ s[14] ^ s[19] ^ s[24];
        d0 = c4 ^ ROTL64(c1, 1);
        d1 = c0 ^ ROTL64(c2, 1);
        d2 = c1 ^ ROTL64(c3, 1);
        d3 = c2 ^ ROTL64(c4, 1);
        d4 = c3 ^ ROTL64(c0, 1);
        /* theta applied, then rho and pi: b[y][2x+3y] = rotl(a[x][y] ^ d[x], r[x][y]) */
        b[0] = s[0] ^ d0;
        b[10] = ROTL64(s[1] ^ d1, 1);
        b[20] = ROTL64(s[2] ^ d2, 62);
        b[5] = ROTL64(s[3] ^ d3, 28);
        b[15] = ROTL64(s[4] ^ d4, 27);
        b[16] = ROTL64(s[5] ^ d0, 36);
        b[1] = ROTL64(s[6] ^ d1, 44);
        b[11] = ROTL64(s[7] ^ d2, 6);
        b[21] = ROTL64(s[8] ^ d3, 55);
        b[6] = ROTL64(s[9] ^ d4, 20);
        b[7] = ROTL64(s[10] ^ d0, 3);
        b[17] = ROTL64(s[11] ^ d1, 10);
        b[2] = ROTL64(s[12] ^ d2, 43);
        b[12] = ROTL64(s[13] ^ d3, 25);
        b[22] = ROTL64(s[14] ^ d4, 39);
        b[23] = ROTL64(s[15] ^ d0, 41);
        b[8] = ROTL64(s[16] ^ d1, 45);
        b[18] = ROTL64(s[17] ^ d2, 15);
        b[3] = ROTL64(s[18] ^ d3, 21);
        b[13] = ROTL64(s[19] ^ d4, 8);
        b[14] = ROTL64(s[20] ^ d0, 18);
        b[24] = ROTL64(s[21] ^ d1, 2);
        b[9] = ROTL64(s[22] ^ d2, 61);
        b[19] = ROTL64(s[23] ^ d3, 56);
        b[4] = ROTL64(s[24] ^ d4, 14);
        /* chi */
        s[0] = b[0] ^ (~b[1] & b[2]);
        s[1] = b[1] ^ (~b[2] & b[3]);
        s[2] = b[2] ^ (~b[3] & b[4]);
        s[3] = b[3] ^ (~b[4] & b[0]);
        s[4] = b[4] ^ (~b[0] & b[1]);
        s[5] = b[5] ^ (~b[6] & b[7]);
        s[6] = b[6] ^ (~b[7] & b[8]);
        s[7] = b[7] ^ (~b[8] & b[9]);
        s[8] = b[8] ^ (~b[9] & b[5]);
        s[9] = b[9] ^ (~b[5] & b[6]);
        s[10] = b[10] ^ (~b[11] & b[12]);
        s[11] = b[11] ^ (~b[12] & b[13]);
        s[12] = b[12] ^ (~b[13] & b[14]);
        s[13] = b[13] ^ (~b[14] & b[10]);
        s[14] = b[14] ^ (~b[10] & b[11]);
        s[15] = b[15] ^ (~b[16] & b[17]);
        s[16] = b[16] ^ (~b[17] & b[18]);
        s[17] = b[17] ^ (~b[18] & b[19]);
        s[18] = b[18] ^ (~b[19] & b[15]);
        s[19] = b[19] ^ (~b[15] & b[16]);
        s[20] = b[20] ^ (~b[21] & b[22]);
        s[21] = b[21] ^ (~b[22] & b[23]);
        s[22] = b[22] ^ (~b[23] & b[24]);
        s[23] = b[23] ^ (~b[24] & b[20]);
        s[24] = b[24] ^ (~b[20] & b[21]);
        /* iota */
        s[0] ^= KECCAK_RC[round];
    }
}

static void keccakf1600(uint64_t s[25]) { keccakf1600_inline(s); }

#define KECCAK256_RATE 136

/* Little-endian lane load/store: Keccak's byte order inside a lane. */
static inline uint64_t keccak_load_lane(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static inline void keccak_store_lane(uint64_t v, uint8_t *p) {
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* out32 = keccak256(data[0..len)). */
__attribute__((unused)) static void keccak256(const uint8_t *data, uint32_t len, uint8_t *out32) {
    uint64_t s[25];
    uint8_t block[KECCAK256_RATE];
    for (int i = 0; i < 25; i++) s[i] = 0;
    while (len >= KECCAK256_RATE) {
        for (int i = 0; i < KECCAK256_RATE / 8; i++) s[i] ^= keccak_load_lane(data + 8 * i);
        keccakf1600(s);
        data += KECCAK256_RATE;
        len -= KECCAK256_RATE;
    }
    /* Last block: the remaining bytes, then the pad10*1 with Keccak's 0x01. */
    for (uint32_t i = 0; i < KECCAK256_RATE; i++) block[i] = i < len ? data[i] : 0;
    block[len] ^= 0x01;
    block[KECCAK256_RATE - 1] ^= 0x80;
    for (int i = 0; i < KECCAK256_RATE / 8; i++) s[i] ^= keccak_load_lane(block + 8 * i);
    keccakf1600(s);
    for (int i = 0; i < 4; i++) keccak_store_lane(s[i], out32 + 8 * i);
}

/* h = keccak256(h) for a 32-byte h held as four little-endian lanes: one
 * block, so the input and padding go straight into the state. */
static inline void keccak256_lanes32(uint64_t h[4]) {
    uint64_t s[25];
    for (int i = 0; i < 25; i++) s[i] = 0;
    s[0] = h[0];
    s[1] = h[1];
    s[2] = h[2];
    s[3] = h[3];
    s[4] = 0x01;                  /* padding byte right after the 32 input bytes */
    s[16] = 0x8000000000000000ull; /* final padding bit, byte 135 of the block */
    keccakf1600_inline(s);
    h[0] = s[0];
    h[1] = s[1];
    h[2] = s[2];
    h[3] = s[3];
}

#endif /* EWASM_KECCAK_H */
