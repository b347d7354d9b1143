/*
 * shard.h — import module "shard": cross-shard receipts, for contracts on a sharded
 * chain (include it after ewasm.h). Plain contracts never need it.
 *
 * A contract sends value and a payload to an address on another shard with
 * shard_sendReceipt: the value leaves its balance at once, the receipt lands on the
 * destination shard once the sending block is final, and there it runs the
 * receiver's `main` with the payload as call data and the value as call value. If
 * the receiver fails, a refund receipt brings the value (and the payload) back to
 * `refundTo` on this shard, where the refund runs `refundTo`'s `main` in turn.
 *
 * While it handles a receipt, a contract's top frame reads it with the
 * shard_getReceipt* functions. shard_getReceiptSourceShard() is -1 in any other
 * frame, so `main` tells a delivery from an ordinary call by it. Trust: `source`
 * is the account that sent the receipt (no contract can send in another's name);
 * a contract placed at the same system address on every shard checks that the
 * source is itself.
 */
#ifndef EWASM_SHARD_H
#define EWASM_SHARD_H

#include <stdint.h>

#define SHARD_IMPORT(name) __attribute__((import_module("shard"), import_name(#name)))

/* The shard of `to` when shard is SHARD_OF_ADDRESS; a system address (on every shard)
 * needs its shard named. Returns 0 when sent, 1 when the balance cannot cover value16.
 * Traps for a payload above 4096 bytes, no such shard, a refund address that is not on
 * this shard, or in a frame that is handling a delivery (its gas is nobody's).
 * Gas: 9,700 + 8 per payload byte. */
#define SHARD_OF_ADDRESS (-1)
SHARD_IMPORT(sendReceipt)
int32_t shard_sendReceipt(int32_t shard, const uint8_t *to20, const uint8_t *value16, const void *data,
                          uint32_t length, const uint8_t *refundTo20);

/* This block's shard, and the shard an address lives on (-1: a system address, on all). */
SHARD_IMPORT(getShardId) int32_t shard_getShardId(void);
SHARD_IMPORT(getShardOf) int32_t shard_getShardOf(const uint8_t *address20);

/* The receipt being handled: its source shard, or -1 when the frame handles none. */
SHARD_IMPORT(getReceiptSourceShard) int32_t shard_getReceiptSourceShard(void);
/* The account that sent it; the one it refunds; its value (128-bit little-endian);
 * its 14-byte id (source shard, block, index); 1 if it is a refund. These trap when
 * the frame handles no receipt. */
SHARD_IMPORT(getReceiptSource) void shard_getReceiptSource(uint8_t *result20);
SHARD_IMPORT(getReceiptSender) void shard_getReceiptSender(uint8_t *result20);
SHARD_IMPORT(getReceiptValue) void shard_getReceiptValue(uint8_t *result16);
SHARD_IMPORT(getReceiptId) void shard_getReceiptId(uint8_t *result14);
SHARD_IMPORT(isReceiptRefund) int32_t shard_isReceiptRefund(void);

#endif
