;; forwarder.wat — counts its calls and passes each one on, written by hand.
;;
;;   calldata = target (20 bytes) ++ input (the rest, up to 65,408 bytes)
;;
;; 1. adds 1 (mod 2^256) to the big-endian uint256 word at storage key 32 zero bytes;
;; 2. calls `target` with `input`, all the gas it has left (the VM keeps 1/64) and
;;    value 0: the transaction's call value stays with the forwarder;
;; 3. finishes with the callee's return data if the call succeeded, and reverts with
;;    it otherwise (a revert or a failure of the callee), which undoes step 1.
;;
;; Its interface is raw calldata, not an ABI function (contracts/abi.py):
;; @abi fallback payable
;;
;; Calldata shorter than 20 bytes, or input or return data that does not fit the
;; buffer, reverts with empty data. A callee outside the transaction's scope is
;; not a failed call: the VM ends the whole transaction with OUT_OF_RANGE there.
;; A forwarder can target another forwarder: its input is then target ++ input again.
(module
  (import "ethereum" "getCallDataSize" (func $getCallDataSize (result i32)))
  (import "ethereum" "callDataCopy" (func $callDataCopy (param i32 i32 i32)))
  (import "ethereum" "storageLoad" (func $storageLoad (param i32 i32)))
  (import "ethereum" "storageStore" (func $storageStore (param i32 i32)))
  (import "ethereum" "getGasLeft" (func $getGasLeft (result i64)))
  (import "ethereum" "call" (func $call (param i64 i32 i32 i32 i32) (result i32)))
  (import "ethereum" "getReturnDataSize" (func $getReturnDataSize (result i32)))
  (import "ethereum" "returnDataCopy" (func $returnDataCopy (param i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (import "ethereum" "revert" (func $revert (param i32 i32)))

  ;; Memory layout: [0, 32) the storage key (zeros), [32, 64) the count word,
  ;; [64, 80) the call value (zeros), [96, 116) the target, [128, 65536) the
  ;; call's input and then its return data.
  (memory (export "memory") 1 1)

  ;; Add 1 to the big-endian word at 32, carrying from the last byte up.
  (func $increment_word
    (local $i i32) (local $b i32)
    (local.set $i (i32.const 31))
    (block $done
      (loop $carry
        (local.set $b (i32.add (i32.load8_u offset=32 (local.get $i)) (i32.const 1)))
        (i32.store8 offset=32 (local.get $i) (local.get $b))
        (br_if $done (i32.lt_u (local.get $b) (i32.const 256)))
        (br_if $done (i32.eqz (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $carry))))

  (func (export "main")
    (local $input i32) (local $status i32) (local $out i32)
    (if (i32.lt_u (call $getCallDataSize) (i32.const 20))
      (then (call $revert (i32.const 0) (i32.const 0))))
    (local.set $input (i32.sub (call $getCallDataSize) (i32.const 20)))
    (if (i32.gt_u (local.get $input) (i32.const 65408))
      (then (call $revert (i32.const 0) (i32.const 0))))
    ;; count the call first, so that a failed call visibly undoes it
    (call $storageLoad (i32.const 0) (i32.const 32))
    (call $increment_word)
    (call $storageStore (i32.const 0) (i32.const 32))
    (call $callDataCopy (i32.const 96) (i32.const 0) (i32.const 20))
    (call $callDataCopy (i32.const 128) (i32.const 20) (local.get $input))
    (local.set $status
      (call $call (call $getGasLeft) (i32.const 96) (i32.const 64) (i32.const 128) (local.get $input)))
    (local.set $out (call $getReturnDataSize))
    (if (i32.gt_u (local.get $out) (i32.const 65408))
      (then (call $revert (i32.const 0) (i32.const 0))))
    (call $returnDataCopy (i32.const 128) (i32.const 0) (local.get $out))
    (if (local.get $status)
      (then (call $revert (i32.const 128) (local.get $out))))
    (call $finish (i32.const 128) (local.get $out)))
)
