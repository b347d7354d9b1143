;; permissions.wat — the consortium's node permission list, at 0x000000000000000000000000000000000000ff01.
;;
;;   allowNode(address)           (0x40d4e378)  admins only: the node may connect
;;   removeNode(address)          (0xb2b99ec9)  admins only: the node may no longer connect
;;   isAllowed(address) -> bool   (0xbabcc539)  anyone
;;
;; Storage (32-byte keys, big-endian word values, 1 = yes, absent = no):
;;   0x01 || 11 zero bytes || node   the node is allowed
;;   0x02 || 11 zero bytes || admin  the account is an admin (set in genesis only)
;;
;; allowNode and removeNode log NodeAllowed(address) / NodeRemoved(address) with the node
;; as the indexed topic. A caller that is not an admin, an unknown selector, calldata
;; shorter than 36 bytes or an address word with dirty high bytes reverts with empty
;; data. The ABI the chain reads it with is in chain/core/system.py.
(module
  (import "ethereum" "getCallDataSize" (func $getCallDataSize (result i32)))
  (import "ethereum" "callDataCopy" (func $callDataCopy (param i32 i32 i32)))
  (import "ethereum" "getCaller" (func $getCaller (param i32)))
  (import "ethereum" "storageLoad" (func $storageLoad (param i32 i32)))
  (import "ethereum" "storageStore" (func $storageStore (param i32 i32)))
  (import "ethereum" "log" (func $log (param i32 i32 i32 i32 i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (import "ethereum" "revert" (func $revert (param i32 i32)))

  ;; Memory: [0, 4) the selector, [32, 64) the address word, [64, 96) a storage key,
  ;; [96, 128) a value word, [128, 148) the caller, [192, 224) and [224, 256) the event
  ;; topics NodeAllowed and NodeRemoved.
  (memory (export "memory") 1 1)
  (data (i32.const 192) "\a8\be\2e\50\1c\01\98\42\3f\74\7b\9c\5d\76\83\44\51\74\78\58\9d\dd\39\59\6b\79\29\b5\9d\4d\24\c6")
  (data (i32.const 224) "\cf\c2\41\66\db\4b\b6\77\e8\57\ca\ca\bd\15\41\fb\2b\30\64\50\21\b2\7c\51\30\41\95\89\b8\4d\b5\2b")

  (func $fail (call $revert (i32.const 0) (i32.const 0)))

  ;; The storage key `prefix || 11 zero bytes || the 20 bytes at address` at [64, 96).
  (func $key (param $prefix i32) (param $address i32)
    (memory.fill (i32.const 64) (i32.const 0) (i32.const 12))
    (i32.store8 (i32.const 64) (local.get $prefix))
    (memory.copy (i32.const 76) (local.get $address) (i32.const 20)))

  (func $is_admin (result i32)
    (call $getCaller (i32.const 128))
    (call $key (i32.const 2) (i32.const 128))
    (call $storageLoad (i32.const 64) (i32.const 96))
    (i32.load8_u (i32.const 127)))

  ;; The argument node's entry := value (0 deletes it), and its event logged.
  (func $set (param $value i32) (param $topic i32)
    (call $key (i32.const 1) (i32.const 44))
    (memory.fill (i32.const 96) (i32.const 0) (i32.const 32))
    (i32.store8 (i32.const 127) (local.get $value))
    (call $storageStore (i32.const 64) (i32.const 96))
    (call $log (i32.const 0) (i32.const 0) (i32.const 2) (local.get $topic) (i32.const 32) (i32.const 0) (i32.const 0))
    (call $finish (i32.const 0) (i32.const 0)))

  (func (export "main")
    (local $selector i32)
    (if (i32.lt_u (call $getCallDataSize) (i32.const 36)) (then (call $fail)))
    (call $callDataCopy (i32.const 0) (i32.const 0) (i32.const 4))
    (call $callDataCopy (i32.const 32) (i32.const 4) (i32.const 32))
    (if (i32.or (i64.ne (i64.load (i32.const 32)) (i64.const 0)) (i32.ne (i32.load (i32.const 40)) (i32.const 0)))
      (then (call $fail)))
    (local.set $selector (i32.load (i32.const 0)))  ;; the 4 bytes, read little-endian
    (if (i32.eq (local.get $selector) (i32.const 0x39c5bcba)) (then  ;; isAllowed
      (call $key (i32.const 1) (i32.const 44))
      (call $storageLoad (i32.const 64) (i32.const 96))
      (call $finish (i32.const 96) (i32.const 32))))
    (if (i32.eqz (call $is_admin)) (then (call $fail)))
    (if (i32.eq (local.get $selector) (i32.const 0x78e3d440)) (then (call $set (i32.const 1) (i32.const 192))))
    (if (i32.eq (local.get $selector) (i32.const 0xc99eb9b2)) (then (call $set (i32.const 0) (i32.const 224))))
    (call $fail)))
