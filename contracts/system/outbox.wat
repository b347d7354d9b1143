;; outbox.wat — the system outbox at 0x000000000000000000000000000000000000ff03: how an
;; externally owned account moves value to another shard.
;;
;;   calldata: the 20-byte destination address (nothing else)
;;   value:    what moves
;;
;; The value leaves the sender's shard at once: the outbox passes it on in a receipt
;; (import module `shard`, ewasm_runtime/shard_host.py) that refunds the caller, and keeps
;; nothing itself. The receipt lands on the destination's shard once this block is final
;; (chain/ledger/deliveries.py); if it cannot land there, the caller gets the value back.
;;
;; Reverts with empty data: calldata that is not exactly 20 bytes, no value, or a
;; destination that is a system address (below 2^20: they exist on every shard and hold
;; no balance).
;;
;; The outbox's storage is the chain's, not this code's: the destination shard records
;; each receipt it has consumed there (chain/core/cross_shard.py, consumed_slot).
(module
  (import "ethereum" "getCallDataSize" (func $getCallDataSize (result i32)))
  (import "ethereum" "callDataCopy" (func $callDataCopy (param i32 i32 i32)))
  (import "ethereum" "getCaller" (func $getCaller (param i32)))
  (import "ethereum" "getCallValue" (func $getCallValue (param i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (import "ethereum" "revert" (func $revert (param i32 i32)))
  (import "shard" "sendReceipt" (func $sendReceipt (param i32 i32 i32 i32 i32 i32) (result i32)))

  ;; Memory: [0, 20) the destination, [32, 48) the value (u128 little-endian),
  ;; [64, 84) the caller.
  (memory (export "memory") 1 1)

  (func $fail (call $revert (i32.const 0) (i32.const 0)))

  (func (export "main")
    (if (i32.ne (call $getCallDataSize) (i32.const 20)) (then (call $fail)))
    (call $callDataCopy (i32.const 0) (i32.const 0) (i32.const 20))
    ;; a system address: 17 zero bytes, then a byte below 0x10
    (if (i32.and (i64.eqz (i64.or (i64.load (i32.const 0)) (i64.load (i32.const 8))))
                 (i32.and (i32.eqz (i32.load8_u (i32.const 16)))
                          (i32.lt_u (i32.load8_u (i32.const 17)) (i32.const 16))))
      (then (call $fail)))
    (call $getCallValue (i32.const 32))
    (if (i64.eqz (i64.or (i64.load (i32.const 32)) (i64.load (i32.const 40)))) (then (call $fail)))
    (call $getCaller (i32.const 64))
    ;; to the shard of the destination (-1), no payload, refunds to the caller
    (if (call $sendReceipt (i32.const -1) (i32.const 0) (i32.const 32) (i32.const 0) (i32.const 0) (i32.const 64))
      (then (call $fail)))
    (call $finish (i32.const 0) (i32.const 0))))
