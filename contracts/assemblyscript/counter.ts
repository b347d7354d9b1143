/**
 * counter.ts — a counter with Ethereum ABI selectors, in AssemblyScript: the
 * twin of examples/counter.wat (same selectors, storage and reverts).
 *
 *   increment() -> uint256   (0xd09de08a) adds 1 (mod 2^64), returns the new value
 *   get()       -> uint256   (0x6d4ce63c) returns the value
 *
 * Its interface, as NAME.abi.json gives it (contracts/abi.py):
 * @abi function increment() returns (uint256)
 * @abi function get() view returns (uint256)
 *
 * Anything else (unknown selector, calldata shorter than 4 bytes) reverts
 * with empty data. Storage: key = 32 zero bytes, value = the count as a
 * big-endian uint256 word (it never exceeds 64 bits).
 */
import { abiReturnU256, abiSelector, fail, storageLoad, storageStore, u256Limb } from "./ewasm";

const SEL_INCREMENT: u32 = 0xd09de08a;  // increment()
const SEL_GET: u32 = 0x6d4ce63c;        // get()

const KEY: usize = memory.data(32);    // 32 zero bytes
const COUNT: usize = memory.data(32);

export function main(): void {
  const selector = abiSelector();
  if (selector == SEL_INCREMENT) {
    storageLoad(KEY, COUNT);
    // Only the low 8 bytes change, as in counter.wat: the count wraps at 2^64.
    store<u64>(COUNT + 24, bswap<u64>(u256Limb(COUNT, 0) + 1));
    storageStore(KEY, COUNT);
    abiReturnU256(COUNT);
  } else if (selector == SEL_GET) {
    storageLoad(KEY, COUNT);
    abiReturnU256(COUNT);
  } else {
    fail();
  }
}
