/**
 * ewasm.ts — the contract SDK for AssemblyScript: the Ethereum Environment
 * Interface (EEI) imports, 256-bit and 128-bit value helpers, Ethereum ABI
 * helpers and storage helpers. The twin of the C SDK, contracts/include/ewasm.h.
 *
 * Build with `ewasm compile FILE.ts` (contracts/build.py runs the pinned
 * AssemblyScript compiler with the stub runtime, no abort import and MVP wasm
 * features). A contract imports what it uses from this file by relative path:
 *
 *     import { abiSelector, fail } from "./ewasm";
 *     export function main(): void { ... }          // the runtime code's `main`
 *     export function constructor(): void { ... }   // optional: runs once at deployment
 *
 * Conventions (ewasm): the module imports only from "ethereum", exports exactly
 * `main` and `memory`, has no start function and uses no floats. Addresses are
 * 20 bytes; values and balances are 128-bit little-endian; storage keys and
 * values are 32 raw bytes.
 *
 * Nothing here allocates: every buffer is a static `memory.data` block and every
 * number wider than 64 bits lives in memory, at a pointer. That keeps the
 * AssemblyScript runtime (its allocator, garbage collector and their start
 * function) out of the contract.
 */

// ---------------------------------------------------------------------------
// The EEI: 33 host functions, import module "ethereum", exact ewasm names.
// Pointers are `usize` (i32 in wasm32), lengths `u32`.
// ---------------------------------------------------------------------------

@external("ethereum", "useGas") export declare function useGas(amount: i64): void;
@external("ethereum", "getGasLeft") export declare function getGasLeft(): i64;

@external("ethereum", "getAddress") export declare function getAddress(result20: usize): void;
@external("ethereum", "getCaller") export declare function getCaller(result20: usize): void;
@external("ethereum", "getCallValue") export declare function getCallValue(result16: usize): void;
@external("ethereum", "getTxOrigin") export declare function getTxOrigin(result20: usize): void;
@external("ethereum", "getTxGasPrice") export declare function getTxGasPrice(result16: usize): void;
@external("ethereum", "getExternalBalance")
export declare function getExternalBalance(address20: usize, result16: usize): void;

@external("ethereum", "getBlockCoinbase") export declare function getBlockCoinbase(result20: usize): void;
@external("ethereum", "getBlockDifficulty") export declare function getBlockDifficulty(result32: usize): void;
@external("ethereum", "getBlockGasLimit") export declare function getBlockGasLimit(): i64;
@external("ethereum", "getBlockNumber") export declare function getBlockNumber(): i64;
@external("ethereum", "getBlockTimestamp") export declare function getBlockTimestamp(): i64;
/** 0 on success, 1 when the block is not among the last 256. */
@external("ethereum", "getBlockHash") export declare function getBlockHash(num: i64, result32: usize): i32;

@external("ethereum", "storageStore") export declare function storageStore(key32: usize, value32: usize): void;
@external("ethereum", "storageLoad") export declare function storageLoad(key32: usize, result32: usize): void;

@external("ethereum", "getCallDataSize") export declare function getCallDataSize(): u32;
@external("ethereum", "callDataCopy")
export declare function callDataCopy(result: usize, dataOffset: u32, length: u32): void;
@external("ethereum", "getCodeSize") export declare function getCodeSize(): u32;
@external("ethereum", "codeCopy") export declare function codeCopy(result: usize, codeOffset: u32, length: u32): void;
@external("ethereum", "getExternalCodeSize") export declare function getExternalCodeSize(address20: usize): u32;
@external("ethereum", "externalCodeCopy")
export declare function externalCodeCopy(address20: usize, result: usize, codeOffset: u32, length: u32): void;
@external("ethereum", "getReturnDataSize") export declare function getReturnDataSize(): u32;
@external("ethereum", "returnDataCopy")
export declare function returnDataCopy(result: usize, dataOffset: u32, length: u32): void;

/** Calls return 0 on success, 1 on failure, 2 on revert. */
@external("ethereum", "call")
export declare function call(gas: i64, address20: usize, value16: usize, data: usize, length: u32): i32;
@external("ethereum", "callCode")
export declare function callCode(gas: i64, address20: usize, value16: usize, data: usize, length: u32): i32;
@external("ethereum", "callDelegate")
export declare function callDelegate(gas: i64, address20: usize, data: usize, length: u32): i32;
@external("ethereum", "callStatic")
export declare function callStatic(gas: i64, address20: usize, data: usize, length: u32): i32;
/** 0 on success (the new address written to result20), 1 on failure, 2 on revert. */
@external("ethereum", "create")
export declare function create(value16: usize, data: usize, length: u32, result20: usize): i32;

/** Topics are pointers to 32-byte words; unused ones are ignored. */
@external("ethereum", "log")
export declare function log(data: usize, length: u32, numberOfTopics: u32, topic1: usize, topic2: usize,
                            topic3: usize, topic4: usize): void;

// finish, revert and selfDestruct end the call: they never return.
@external("ethereum", "finish") export declare function finish(data: usize, length: u32): void;
@external("ethereum", "revert") export declare function revert(data: usize, length: u32): void;
@external("ethereum", "selfDestruct") export declare function selfDestruct(beneficiary20: usize): void;

// ---------------------------------------------------------------------------
// u256: an unsigned 256-bit integer, kept in memory as a 32-byte big-endian
// word (the order of ABI words and storage values, so no conversion is needed
// on the way in or out). Limb i (0 = least significant) is the 8 bytes at
// word + 8 * (3 - i), big-endian.
// ---------------------------------------------------------------------------

/** Limb i of the word at w, as a number. */
// @ts-ignore: decorator
@inline export function u256Limb(w: usize, i: u32): u64 {
  return bswap<u64>(load<u64>(w + ((3 - i) << 3)));
}

// @ts-ignore: decorator
@inline function setLimb(w: usize, i: u32, v: u64): void {
  store<u64>(w + ((3 - i) << 3), bswap<u64>(v));
}

/** Write v (zero-extended) as the word at w. */
export function u256FromU64(w: usize, v: u64): void {
  store<u64>(w, 0);
  store<u64>(w, 0, 8);
  store<u64>(w, 0, 16);
  setLimb(w, 0, v);
}

export function u256IsZero(w: usize): bool {
  return (load<u64>(w) | load<u64>(w, 8) | load<u64>(w, 16) | load<u64>(w, 24)) == 0;
}

/** Whether the word at w is below 2^64 (its upper 24 bytes are zero). */
export function u256FitsU64(w: usize): bool {
  return (load<u64>(w) | load<u64>(w, 8) | load<u64>(w, 16)) == 0;
}

export function u256Eq(a: usize, b: usize): bool {
  return ((load<u64>(a) ^ load<u64>(b)) | (load<u64>(a, 8) ^ load<u64>(b, 8))
    | (load<u64>(a, 16) ^ load<u64>(b, 16)) | (load<u64>(a, 24) ^ load<u64>(b, 24))) == 0;
}

/** a < b */
export function u256Lt(a: usize, b: usize): bool {
  for (let i: i32 = 3; i >= 0; i--) {
    const x = u256Limb(a, <u32>i), y = u256Limb(b, <u32>i);
    if (x != y) return x < y;
  }
  return false;
}

/** r = a + b mod 2^256; returns the carry out (true on overflow). r may be a or b. */
export function u256Add(r: usize, a: usize, b: usize): bool {
  let carry: u64 = 0;
  for (let i: u32 = 0; i < 4; i++) {
    const s = u256Limb(a, i) + carry;
    const c1: u64 = s < carry ? 1 : 0;
    const t = s + u256Limb(b, i);
    carry = c1 | (t < s ? 1 : 0);
    setLimb(r, i, t);
  }
  return carry != 0;
}

/** r = a - b mod 2^256; returns the borrow out (true when b > a). r may be a or b. */
export function u256Sub(r: usize, a: usize, b: usize): bool {
  let borrow: u64 = 0;
  for (let i: u32 = 0; i < 4; i++) {
    const x = u256Limb(a, i), y = u256Limb(b, i);
    const d = x - y;
    const b1: u64 = x < y ? 1 : 0;
    const t = d - borrow;
    borrow = b1 | (d < borrow ? 1 : 0);
    setLimb(r, i, t);
  }
  return borrow != 0;
}

// ---------------------------------------------------------------------------
// u128: call values and balances, 16 bytes little-endian (as the EEI has them).
// ---------------------------------------------------------------------------

export function u128IsZero(v: usize): bool {
  return (load<u64>(v) | load<u64>(v, 8)) == 0;
}

/** Write lo + hi * 2^64 as the 16-byte value at v. */
export function u128Set(v: usize, lo: u64, hi: u64): void {
  store<u64>(v, lo);
  store<u64>(v, hi, 8);
}

/** The 16-byte value at v as a 32-byte big-endian word at w (ABI and storage order). */
export function u128ToU256(v: usize, w: usize): void {
  u256FromU64(w, load<u64>(v));
  setLimb(w, 1, load<u64>(v, 8));
}

/** The word at w as a 16-byte value at v; false (v untouched) when w is 2^128 or more. */
export function u256ToU128(w: usize, v: usize): bool {
  if ((load<u64>(w) | load<u64>(w, 8)) != 0) return false;
  u128Set(v, u256Limb(w, 0), u256Limb(w, 1));
  return true;
}

// ---------------------------------------------------------------------------
// Copies of addresses and words: a few wide loads and stores. (AssemblyScript's
// memory.copy, without the bulk-memory feature, is a general memmove of some
// 1.5 KB that every contract would carry.)
// ---------------------------------------------------------------------------

/** Copy the 20-byte address at src to dst. */
export function copyAddress(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src));
  store<u64>(dst, load<u64>(src, 8), 8);
  store<u32>(dst, load<u32>(src, 16), 16);
}

/** Copy the 32-byte word at src to dst. */
export function copyWord(dst: usize, src: usize): void {
  store<u64>(dst, load<u64>(src));
  store<u64>(dst, load<u64>(src, 8), 8);
  store<u64>(dst, load<u64>(src, 16), 16);
  store<u64>(dst, load<u64>(src, 24), 24);
}

// ---------------------------------------------------------------------------
// Ethereum ABI: selector dispatch, argument decoding, return encoding.
// ---------------------------------------------------------------------------

/** Revert with no data: what the ABI does on bad input. */
export function fail(): void {
  revert(0, 0);
  unreachable();
}

// Calldata is copied into memory once, by abiSelector: every host call costs a
// trip out of wasm, so arguments are then read from this buffer. Words beyond
// the cap are fetched with callDataCopy.
export const CALLDATA_CAP: u32 = 4 + 32 * 8;
const CALLDATA: usize = memory.data(CALLDATA_CAP);
let calldataSize: u32 = 0;
const ARG: usize = memory.data(32);  // scratch word for abiArgAddress and abiReturnU64

/** The first four calldata bytes as a big-endian number; reverts when the calldata
 *  is shorter than a selector. Call it before reading arguments. */
export function abiSelector(): u32 {
  const size = getCallDataSize();
  if (size < 4) fail();
  calldataSize = size;
  callDataCopy(CALLDATA, 0, size < CALLDATA_CAP ? size : CALLDATA_CAP);
  return bswap<u32>(load<u32>(CALLDATA));
}

/** Copy the index-th 32-byte head word after the selector to out; reverts when the
 *  calldata is too short (as Solidity and Vyper do). */
export function abiArgWord(index: u32, out32: usize): void {
  const offset: u32 = 4 + 32 * index;
  if (index >= (1 << 26) || calldataSize < offset + 32) fail();
  if (offset + 32 <= CALLDATA_CAP) {
    copyWord(out32, CALLDATA + offset);
  } else {
    callDataCopy(out32, offset, 32);
  }
}

/** A uint256 argument as a big-endian word at out32 (the same bytes as the calldata's). */
export function abiArgU256(index: u32, out32: usize): void {
  abiArgWord(index, out32);
}

/** A uint256 argument that must fit in 64 bits; larger values revert. */
export function abiArgU64(index: u32): u64 {
  abiArgWord(index, ARG);
  if (!u256FitsU64(ARG)) fail();
  return u256Limb(ARG, 0);
}

/** An address argument: the word's upper 12 bytes must be zero (else revert), the
 *  low 20 bytes are the address, copied to out20. */
export function abiArgAddress(index: u32, out20: usize): void {
  abiArgWord(index, ARG);
  if ((load<u64>(ARG) | <u64>load<u32>(ARG, 8)) != 0) fail();
  copyAddress(out20, ARG + 12);
}

/** Left-pad a 20-byte address to a 32-byte word (ABI, log topics). */
export function abiAddressWord(address20: usize, out32: usize): void {
  store<u64>(out32, 0);
  store<u32>(out32, 0, 8);
  copyAddress(out32 + 12, address20);
}

/** Return the word at w as the call's output. */
export function abiReturnU256(w: usize): void {
  finish(w, 32);
}

export function abiReturnU64(v: u64): void {
  u256FromU64(ARG, v);
  finish(ARG, 32);
}

export function abiReturnBool(v: bool): void {
  abiReturnU64(v ? 1 : 0);
}

// ---------------------------------------------------------------------------
// Storage: 32-byte keys, values as big-endian uint256 words (as the EVM), so
// storageLoad and storageStore move u256 words as they are.
// ---------------------------------------------------------------------------

/** A key for a per-address mapping: byte 0 names the mapping (slot), bytes 1..11
 *  are zero, bytes 12..31 are the address. Distinct slots never collide, and no
 *  keccak is needed, which keeps a storage access to one host call. */
export function storageKeyAddress(slot: u8, address20: usize, key32: usize): void {
  abiAddressWord(address20, key32);
  store<u8>(key32, slot);
}

/** A key for a single value: byte 31 is the slot, the rest zero. */
export function storageKeySlot(slot: u8, key32: usize): void {
  u256FromU64(key32, <u64>slot);
}
