;; counter.wat — a counter with Ethereum ABI selectors, written by hand.
;;
;;   increment() -> uint256   (0xd09de08a) adds 1 (mod 2^64), returns the new value
;;   get()       -> uint256   (0x6d4ce63c) returns the value
;;
;; Its interface, as NAME.abi.json gives it (contracts/abi.py):
;; @abi function increment() returns (uint256)
;; @abi function get() view returns (uint256)
;;
;; Anything else (unknown selector, calldata shorter than 4 bytes) reverts
;; with empty data. Storage: key = 32 zero bytes, value = the count as a
;; big-endian uint256 word (it never exceeds 64 bits).
(module
  (import "ethereum" "getCallDataSize" (func $getCallDataSize (result i32)))
  (import "ethereum" "callDataCopy" (func $callDataCopy (param i32 i32 i32)))
  (import "ethereum" "storageLoad" (func $storageLoad (param i32 i32)))
  (import "ethereum" "storageStore" (func $storageStore (param i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (import "ethereum" "revert" (func $revert (param i32 i32)))

  ;; Memory layout: [0, 32) the storage key (zeros), [32, 64) a value word,
  ;; [64, 68) the selector.
  (memory (export "memory") 1 1)

  ;; The word at 32 as a number: its last 8 bytes, big-endian.
  (func $read_word (result i64)
    (local $i i32) (local $v i64)
    (loop $bytes
      (local.set $v
        (i64.or (i64.shl (local.get $v) (i64.const 8))
                (i64.load8_u offset=56 (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $bytes (i32.lt_u (local.get $i) (i32.const 8))))
    (local.get $v))

  ;; Write v as a big-endian uint256 word at 32 (the top 24 bytes stay zero).
  (func $write_word (param $v i64)
    (local $i i32)
    (local.set $i (i32.const 8))
    (loop $bytes
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i64.store8 offset=56 (local.get $i) (local.get $v))
      (local.set $v (i64.shr_u (local.get $v) (i64.const 8)))
      (br_if $bytes (local.get $i))))

  (func $load_count (result i64)
    (call $storageLoad (i32.const 0) (i32.const 32))
    (call $read_word))

  (func $return_word
    (call $finish (i32.const 32) (i32.const 32)))

  (func (export "main")
    (local $count i64)
    (if (i32.lt_u (call $getCallDataSize) (i32.const 4))
      (then (call $revert (i32.const 0) (i32.const 0))))
    (call $callDataCopy (i32.const 64) (i32.const 0) (i32.const 4))
    ;; i32.load is little-endian: selector bytes d0 9d e0 8a read as 0x8ae09dd0.
    (block $unknown
      (block $get
        (block $increment
          (br_if $increment (i32.eq (i32.load (i32.const 64)) (i32.const 0x8ae09dd0)))
          (br_if $get (i32.eq (i32.load (i32.const 64)) (i32.const 0x3ce64c6d)))
          (br $unknown))
        ;; increment()
        (local.set $count (i64.add (call $load_count) (i64.const 1)))
        (call $write_word (local.get $count))
        (call $storageStore (i32.const 0) (i32.const 32))
        (call $return_word)
        (return))
      ;; get(): storageLoad already left the stored word at 32
      (drop (call $load_count))
      (call $return_word)
      (return))
    (call $revert (i32.const 0) (i32.const 0)))
)
