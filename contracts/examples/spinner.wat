;; spinner.wat — a hostile contract that burns all the gas it is given, written by hand.
;;
;;   calldata empty, or first byte 0: a pure wasm loop (metered code only);
;;   first byte 1: a loop that calls the host function getGasLeft each round.
;;
;; Its interface is raw calldata, not an ABI function (contracts/abi.py):
;; @abi fallback
;;
;; It never returns: every call ends OUT_OF_GAS with all its gas used. The two modes
;; differ in what a gas unit costs in time: the host loop spends most of it in the
;; host interface. The RPC hardening tests and `tools/bench_rpc_load.py` send it as
;; eth_call to make the node's execution work expensive.
(module
  (import "ethereum" "getCallDataSize" (func $getCallDataSize (result i32)))
  (import "ethereum" "callDataCopy" (func $callDataCopy (param i32 i32 i32)))
  (import "ethereum" "getGasLeft" (func $getGasLeft (result i64)))

  (memory (export "memory") 1 1)

  (func (export "main")
    (if (call $getCallDataSize)
      (then (call $callDataCopy (i32.const 0) (i32.const 0) (i32.const 1))))
    (if (i32.load8_u (i32.const 0))
      (then (loop $host (drop (call $getGasLeft)) (br $host))))
    (loop $spin (br $spin))))
