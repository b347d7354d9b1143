/**
 * token.ts — an ERC20-like token with Ethereum ABI selectors, in AssemblyScript:
 * the twin of examples/token.c (same selectors, storage, logs and reverts).
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
import {
  abiAddressWord, abiArgAddress, abiArgU256, abiReturnBool, abiReturnU256, abiSelector, fail, getCaller, log,
  storageKeyAddress, storageKeySlot, storageLoad, storageStore, u256Add, u128Set, u128ToU256, u256Sub,
} from "./ewasm";

const SEL_TRANSFER: u32 = 0xa9059cbb;      // transfer(address,uint256)
const SEL_BALANCE_OF: u32 = 0x70a08231;    // balanceOf(address)
const SEL_TOTAL_SUPPLY: u32 = 0x18160ddd;  // totalSupply()

const SLOT_TOTAL_SUPPLY: u8 = 0;
const SLOT_BALANCES: u8 = 1;

// 1,000,000 tokens with 18 decimals = 10^24 = 0xd3c21bcecceda1000000.
const TOTAL_SUPPLY_HI: u64 = 0xd3c2;
const TOTAL_SUPPLY_LO: u64 = 0x1bcecceda1000000;

// keccak256("Transfer(address,address,uint256)")
const TRANSFER_TOPIC: usize = memory.data<u8>([
  0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
  0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
]);

// Static buffers: the SDK never allocates.
const FROM: usize = memory.data(20);
const TO: usize = memory.data(20);
const KEY: usize = memory.data(32);
const AMOUNT: usize = memory.data(32);
const BALANCE: usize = memory.data(32);
const FROM_WORD: usize = memory.data(32);
const TO_WORD: usize = memory.data(32);
const SUPPLY: usize = memory.data(16);

function transfer(): void {
  abiArgAddress(0, TO);
  abiArgU256(1, AMOUNT);
  getCaller(FROM);

  storageKeyAddress(SLOT_BALANCES, FROM, KEY);
  storageLoad(KEY, BALANCE);
  if (u256Sub(BALANCE, BALANCE, AMOUNT)) fail();
  storageStore(KEY, BALANCE);

  // Read `to` after writing `from`, so a self-transfer sees its own debit.
  storageKeyAddress(SLOT_BALANCES, TO, KEY);
  storageLoad(KEY, BALANCE);
  if (u256Add(BALANCE, BALANCE, AMOUNT)) fail();
  storageStore(KEY, BALANCE);

  abiAddressWord(FROM, FROM_WORD);
  abiAddressWord(TO, TO_WORD);
  log(AMOUNT, 32, 3, TRANSFER_TOPIC, FROM_WORD, TO_WORD, 0);
  abiReturnBool(true);
}

function balanceOf(): void {
  abiArgAddress(0, TO);
  storageKeyAddress(SLOT_BALANCES, TO, KEY);
  storageLoad(KEY, BALANCE);
  abiReturnU256(BALANCE);
}

function totalSupply(): void {
  storageKeySlot(SLOT_TOTAL_SUPPLY, KEY);
  storageLoad(KEY, BALANCE);
  abiReturnU256(BALANCE);
}

export function main(): void {
  const selector = abiSelector();
  if (selector == SEL_TRANSFER) transfer();
  else if (selector == SEL_BALANCE_OF) balanceOf();
  else if (selector == SEL_TOTAL_SUPPLY) totalSupply();
  else fail();
}

/** Mint the whole supply to the deployer and record it as totalSupply. */
export function constructor(): void {
  u128Set(SUPPLY, TOTAL_SUPPLY_LO, TOTAL_SUPPLY_HI);
  u128ToU256(SUPPLY, BALANCE);
  getCaller(FROM);
  storageKeyAddress(SLOT_BALANCES, FROM, KEY);
  storageStore(KEY, BALANCE);
  storageKeySlot(SLOT_TOTAL_SUPPLY, KEY);
  storageStore(KEY, BALANCE);
}
