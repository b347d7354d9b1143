/*
 * xtoken.c — a token that lives on every shard, at the same system address on each,
 * and moves between them through cross-shard receipts (shard.h).
 *
 *   transfer(address,uint256) -> bool            (0xa9059cbb) on this shard
 *   transferCrossShard(address,uint256) -> bool  (0xb1f74c4a) to an account on another shard
 *   balanceOf(address) -> uint256                (0x70a08231)
 *   totalSupply() -> uint256                     (0x18160ddd) the supply on this shard
 *
 * transferCrossShard burns the amount here and sends a receipt to this same contract
 * on the recipient's shard, with the payload to (20 bytes) || amount (32, big-endian)
 * || from (20). There the receipt handler mints it to `to`. If the mint fails, the
 * chain returns the receipt as a refund to this contract on the source shard, whose
 * handler mints the amount back to `from`. A mint to the zero address fails (as an
 * ERC20 transfer to it would), which is how the tests make one fail. The handler
 * takes receipts only from itself: any other source reverts.
 *
 * Events: Transfer(from, to, value) for transfers, Transfer(from, 0, value) for a
 * burn and Transfer(0, to, value) for a mint. Reverts with empty data: unknown
 * selectors, short calldata, dirty address words, insufficient balance, overflow.
 *
 * Its interface, as NAME.abi.json gives it (contracts/abi.py):
 * @abi function transfer(address to, uint256 value) returns (bool)
 * @abi function transferCrossShard(address to, uint256 value) returns (bool)
 * @abi function balanceOf(address owner) view returns (uint256)
 * @abi function totalSupply() view returns (uint256)
 * @abi event Transfer(address indexed from, address indexed to, uint256 value)
 *
 * Storage (as token.c): key 0 the supply on this shard, 0x01 || 11 zero bytes ||
 * address a balance.
 */
#include "ewasm.h"
#include "shard.h"

#define SEL_TRANSFER 0xa9059cbbu
#define SEL_TRANSFER_CROSS_SHARD 0xb1f74c4au
#define SEL_BALANCE_OF 0x70a08231u
#define SEL_TOTAL_SUPPLY 0x18160dddu

#define SLOT_TOTAL_SUPPLY 0
#define SLOT_BALANCES 1
#define PAYLOAD_SIZE (20 + 32 + 20)

static const uint8_t TRANSFER_TOPIC[32] = {
    0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
    0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
};
static const uint8_t ZERO_ADDRESS[20] = {0};

static void log_transfer(const uint8_t *from, const uint8_t *to, u256 amount) {
    uint8_t from_word[32], to_word[32], data[32];
    abi_address_word(from, from_word);
    abi_address_word(to, to_word);
    u256_to_be(amount, data);
    eth_log(data, 32, 3, TRANSFER_TOPIC, from_word, to_word, 0);
}

/* Add `amount` (signed by `add`) to a balance; reverts on overflow or shortfall. */
static void move_balance(const uint8_t *holder, u256 amount, int add) {
    uint8_t key[32];
    storage_key_address(SLOT_BALANCES, holder, key);
    u256 balance = storage_load_u256(key), updated;
    if (add ? u256_add(&updated, balance, amount) : u256_sub(&updated, balance, amount)) ewasm_fail();
    storage_store_u256(key, updated);
}

static void move_supply(u256 amount, int add) {
    uint8_t key[32];
    storage_key_slot(SLOT_TOTAL_SUPPLY, key);
    u256 supply = storage_load_u256(key), updated;
    if (add ? u256_add(&updated, supply, amount) : u256_sub(&updated, supply, amount)) ewasm_fail();
    storage_store_u256(key, updated);
}

__attribute__((noreturn)) static void transfer(void) {
    uint8_t from[20], to[20];
    abi_arg_address(0, to);
    u256 amount = abi_arg_u256(1);
    eth_getCaller(from);
    move_balance(from, amount, 0);
    move_balance(to, amount, 1); /* after the debit: a self-transfer sees it */
    log_transfer(from, to, amount);
    abi_return_bool(1);
}

__attribute__((noreturn)) static void transfer_cross_shard(void) {
    uint8_t payload[PAYLOAD_SIZE], self[20];
    static const uint8_t no_value[16] = {0};
    abi_arg_address(0, payload);
    u256 amount = abi_arg_u256(1);
    u256_to_be(amount, payload + 20);
    eth_getCaller(payload + 52);
    move_balance(payload + 52, amount, 0);
    move_supply(amount, 0);
    eth_getAddress(self);
    int32_t dest = shard_getShardOf(payload);
    if (dest < 0) ewasm_fail(); /* a system address holds no tokens */
    /* To this contract on the recipient's shard; a refund comes back here. */
    if (shard_sendReceipt(dest, self, no_value, payload, PAYLOAD_SIZE, self) != 0) ewasm_fail();
    log_transfer(payload + 52, ZERO_ADDRESS, amount);
    abi_return_bool(1);
}

/* A delivery: mint to the recipient, or for a refund back to the sender. */
__attribute__((noreturn)) static void on_receipt(void) {
    uint8_t source[20], self[20], payload[PAYLOAD_SIZE];
    shard_getReceiptSource(source);
    eth_getAddress(self);
    if (memcmp(source, self, 20) != 0 || eth_getCallDataSize() != PAYLOAD_SIZE) ewasm_fail();
    eth_callDataCopy(payload, 0, PAYLOAD_SIZE);
    const uint8_t *holder = shard_isReceiptRefund() ? payload + 52 : payload;
    if (memcmp(holder, ZERO_ADDRESS, 20) == 0) ewasm_fail();
    u256 amount = u256_from_be(payload + 20);
    move_balance(holder, amount, 1);
    move_supply(amount, 1);
    log_transfer(ZERO_ADDRESS, holder, amount);
    eth_finish(0, 0);
}

__attribute__((noreturn)) static void balance_of(void) {
    uint8_t owner[20], key[32];
    abi_arg_address(0, owner);
    storage_key_address(SLOT_BALANCES, owner, key);
    abi_return_u256(storage_load_u256(key));
}

__attribute__((noreturn)) static void total_supply(void) {
    uint8_t key[32];
    storage_key_slot(SLOT_TOTAL_SUPPLY, key);
    abi_return_u256(storage_load_u256(key));
}

EWASM_MAIN {
    if (shard_getReceiptSourceShard() >= 0) on_receipt();
    switch (abi_selector()) {
    case SEL_TRANSFER:
        transfer();
    case SEL_TRANSFER_CROSS_SHARD:
        transfer_cross_shard();
    case SEL_BALANCE_OF:
        balance_of();
    case SEL_TOTAL_SUPPLY:
        total_supply();
    default:
        ewasm_fail();
    }
}
