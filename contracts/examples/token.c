/*
 * token.c — an ERC20-like token with Ethereum ABI selectors.
 *
 *   transfer(address,uint256) -> bool     (0xa9059cbb) logs Transfer(from, to, value)
 *   balanceOf(address)        -> uint256  (0x70a08231)
 *   totalSupply()             -> uint256  (0x18160ddd)
 *
 * Unknown selectors, short calldata, dirty address words and insufficient
 * balance revert with empty data. Deployment (the deployer build) mints
 * TOTAL_SUPPLY to the deploying account (getCaller).
 *
 * Its interface, as NAME.abi.json gives it (contracts/abi.py):
 * @abi function transfer(address to, uint256 value) returns (bool)
 * @abi function balanceOf(address owner) view returns (uint256)
 * @abi function totalSupply() view returns (uint256)
 * @abi event Transfer(address indexed from, address indexed to, uint256 value)
 *
 * Storage (32-byte keys, values are big-endian uint256 words):
 *   key 0x00..00                          totalSupply
 *   key 0x01 || 11 zero bytes || address  balance of address
 */
#include "ewasm.h"

#define SEL_TRANSFER 0xa9059cbbu     /* transfer(address,uint256) */
#define SEL_BALANCE_OF 0x70a08231u   /* balanceOf(address) */
#define SEL_TOTAL_SUPPLY 0x18160dddu /* totalSupply() */

#define SLOT_TOTAL_SUPPLY 0
#define SLOT_BALANCES 1

/* 1,000,000 tokens with 18 decimals = 10^24 = 0xd3c21bcecceda1000000. */
#define TOTAL_SUPPLY_HI 0xd3c2ull
#define TOTAL_SUPPLY_LO 0x1bcecceda1000000ull

/* keccak256("Transfer(address,address,uint256)") */
static const uint8_t TRANSFER_TOPIC[32] = {
    0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
    0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
};

__attribute__((noreturn)) static void transfer(void) {
    uint8_t from[20], to[20];
    uint8_t from_key[32], to_key[32], from_word[32], to_word[32], data[32];

    abi_arg_address(0, to);
    u256 amount = abi_arg_u256(1);
    eth_getCaller(from);

    storage_key_address(SLOT_BALANCES, from, from_key);
    u256 from_balance = storage_load_u256(from_key);
    u256 new_from;
    if (u256_sub(&new_from, from_balance, amount)) ewasm_fail();
    storage_store_u256(from_key, new_from);

    /* Read `to` after writing `from`, so a self-transfer sees its own debit. */
    storage_key_address(SLOT_BALANCES, to, to_key);
    u256 to_balance = storage_load_u256(to_key);
    u256 new_to;
    if (u256_add(&new_to, to_balance, amount)) ewasm_fail();
    storage_store_u256(to_key, new_to);

    abi_address_word(from, from_word);
    abi_address_word(to, to_word);
    u256_to_be(amount, data);
    eth_log(data, 32, 3, TRANSFER_TOPIC, from_word, to_word, 0);
    abi_return_bool(1);
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
    switch (abi_selector()) {
    case SEL_TRANSFER:
        transfer();
    case SEL_BALANCE_OF:
        balance_of();
    case SEL_TOTAL_SUPPLY:
        total_supply();
    default:
        ewasm_fail();
    }
}

/* Mint the whole supply to the deployer and record it as totalSupply. */
EWASM_CONSTRUCTOR {
    uint8_t owner[20], key[32];
    u256 supply = {{TOTAL_SUPPLY_LO, TOTAL_SUPPLY_HI, 0, 0}};
    eth_getCaller(owner);
    storage_key_address(SLOT_BALANCES, owner, key);
    storage_store_u256(key, supply);
    storage_key_slot(SLOT_TOTAL_SUPPLY, key);
    storage_store_u256(key, supply);
}
