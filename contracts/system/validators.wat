;; validators.wat — the consortium's validator set and the votes that change it, at
;; 0x000000000000000000000000000000000000ff02.
;;
;;   proposeValidator(address, bool add)  (0x52b341fb)  validators only: a vote to add or
;;                                                      remove the address
;;   getValidators() -> address[]         (0xb7ab4db5)  anyone: the list, in order
;;
;; A change applies once more than half of the listed validators have cast the same
;; vote on it: the address joins at the end of the list, or leaves it (the last entry
;; takes its place). The chain reads the list at each epoch boundary, and the set it
;; holds then validates the next epoch (chain/ledger/validator_sets.py): a change is
;; voted here at once and takes effect at the boundary. The listed validators are the
;; voters, so validators still in the list vote until the change takes effect.
;;
;; Votes: each validator has one standing vote per candidate, which a second vote
;; replaces. Once a change applies, the candidate's generation moves on and every vote
;; cast on it before lapses. Only the votes of validators in the list at the time of
;; counting count: a removed validator's votes are never counted again.
;;
;; Storage (32-byte keys; numbers are big-endian words):
;;   0x03 || 31 zero bytes                      n, the number of validators
;;   0x04 || 27 zero bytes || i (4 bytes)       the validator at index i (an address word)
;;   0x05 || 11 zero bytes || address           its index + 1 (absent: not a validator)
;;   0x06 || 11 zero bytes || candidate         the candidate's generation
;;   0x07 || voter || candidate's first 11 bytes  the voter's vote: candidate (20 bytes),
;;                                              1 add or 2 remove (1 byte), 7 zero bytes,
;;                                              the generation it was cast in (4 bytes)
;;
;; Events: ValidatorVoted(address indexed voter, address indexed candidate, bool add),
;; ValidatorAdded(address indexed validator), ValidatorRemoved(address indexed validator).
;;
;; Reverts with empty data: a caller that is not a validator, adding a validator or
;; removing an address that is not one, removing the last validator, adding beyond 1,024
;; validators, an unknown selector, short calldata, an address word with dirty high
;; bytes, a bool word that is not 0 or 1. The ABI the chain reads it with is in
;; chain/core/system.py.
(module
  (import "ethereum" "getCallDataSize" (func $getCallDataSize (result i32)))
  (import "ethereum" "callDataCopy" (func $callDataCopy (param i32 i32 i32)))
  (import "ethereum" "getCaller" (func $getCaller (param i32)))
  (import "ethereum" "storageLoad" (func $storageLoad (param i32 i32)))
  (import "ethereum" "storageStore" (func $storageStore (param i32 i32)))
  (import "ethereum" "log" (func $log (param i32 i32 i32 i32 i32 i32 i32)))
  (import "ethereum" "finish" (func $finish (param i32 i32)))
  (import "ethereum" "revert" (func $revert (param i32 i32)))

  ;; Memory: [0, 4) the selector, [32, 64) the address word (the candidate at [44, 64)),
  ;; [64, 96) the bool word, [96, 128) a storage key, [128, 160) a value word, [160, 192)
  ;; the caller as an address word (the caller at [172, 192)), [192, 224) a second
  ;; address word, [224, 256) the topic ValidatorVoted, [256, 288) ValidatorAdded,
  ;; [288, 320) ValidatorRemoved, [512, ...) the answer of getValidators.
  (memory (export "memory") 1 1)
  (data (i32.const 224) "\d7\6e\5c\45\8a\9a\8d\30\72\89\85\57\28\cb\11\37\a2\1b\ba\e4\7d\e2\75\51\92\f0\bb\16\7b\0e\c6\bb")
  (data (i32.const 256) "\e3\66\c1\c0\45\2e\d8\ee\c9\68\61\e9\e5\41\41\eb\ff\23\c9\ec\89\fe\27\b9\96\b4\5f\5e\c3\88\49\87")
  (data (i32.const 288) "\e1\43\4e\25\d6\61\1e\0d\b9\41\96\8f\dc\97\81\1c\98\2a\c1\60\2e\95\16\37\d2\06\f5\fd\da\9d\d8\f1")

  (global $MAX i32 (i32.const 1024))
  (global $CANDIDATE i32 (i32.const 44))
  (global $CALLER i32 (i32.const 172))

  (func $fail (call $revert (i32.const 0) (i32.const 0)))

  ;; The 4 bytes at ptr as a big-endian number, and back.
  (func $be32 (param $ptr i32) (result i32)
    (i32.or (i32.or (i32.shl (i32.load8_u (local.get $ptr)) (i32.const 24))
                    (i32.shl (i32.load8_u offset=1 (local.get $ptr)) (i32.const 16)))
            (i32.or (i32.shl (i32.load8_u offset=2 (local.get $ptr)) (i32.const 8))
                    (i32.load8_u offset=3 (local.get $ptr)))))
  (func $put_be32 (param $ptr i32) (param $value i32)
    (i32.store8 (local.get $ptr) (i32.shr_u (local.get $value) (i32.const 24)))
    (i32.store8 offset=1 (local.get $ptr) (i32.shr_u (local.get $value) (i32.const 16)))
    (i32.store8 offset=2 (local.get $ptr) (i32.shr_u (local.get $value) (i32.const 8)))
    (i32.store8 offset=3 (local.get $ptr) (local.get $value)))

  ;; Storage keys, built at [96, 128).
  (func $key (param $prefix i32)
    (memory.fill (i32.const 96) (i32.const 0) (i32.const 32))
    (i32.store8 (i32.const 96) (local.get $prefix)))
  (func $address_key (param $prefix i32) (param $address i32)
    (call $key (local.get $prefix))
    (memory.copy (i32.const 108) (local.get $address) (i32.const 20)))
  (func $entry_key (param $index i32)
    (call $key (i32.const 4))
    (call $put_be32 (i32.const 124) (local.get $index)))
  (func $vote_key (param $voter i32)
    (call $key (i32.const 7))
    (memory.copy (i32.const 97) (local.get $voter) (i32.const 20))
    (memory.copy (i32.const 117) (global.get $CANDIDATE) (i32.const 11)))

  ;; Reading and writing a number word at the key in [96, 128), through [128, 160).
  (func $load_number (result i32)
    (call $storageLoad (i32.const 96) (i32.const 128))
    (call $be32 (i32.const 156)))
  (func $store_number (param $value i32)
    (memory.fill (i32.const 128) (i32.const 0) (i32.const 32))
    (call $put_be32 (i32.const 156) (local.get $value))
    (call $storageStore (i32.const 96) (i32.const 128)))

  (func $count (result i32) (call $key (i32.const 3)) (call $load_number))
  (func $set_count (param $n i32) (call $key (i32.const 3)) (call $store_number (local.get $n)))
  (func $position (param $address i32) (result i32)  ;; index + 1, 0 for no validator
    (call $address_key (i32.const 5) (local.get $address)) (call $load_number))
  (func $set_position (param $address i32) (param $position i32)
    (call $address_key (i32.const 5) (local.get $address)) (call $store_number (local.get $position)))
  (func $generation (result i32)
    (call $address_key (i32.const 6) (global.get $CANDIDATE)) (call $load_number))

  ;; The validator at `index` as an address word at `out`.
  (func $load_entry (param $index i32) (param $out i32)
    (call $entry_key (local.get $index))
    (call $storageLoad (i32.const 96) (local.get $out)))
  ;; The address word at `word` as the validator at `index`.
  (func $store_entry (param $index i32) (param $word i32)
    (call $entry_key (local.get $index))
    (call $storageStore (i32.const 96) (local.get $word)))

  ;; Whether the value word at [128, 160) is a vote of this generation for the candidate
  ;; in direction `direction`.
  (func $is_vote (param $direction i32) (param $generation i32) (result i32)
    (i32.and
      (i32.and (i64.eq (i64.load (i32.const 128)) (i64.load (i32.const 44)))
               (i64.eq (i64.load (i32.const 136)) (i64.load (i32.const 52))))
      (i32.and (i32.and (i32.eq (i32.load (i32.const 144)) (i32.load (i32.const 60)))
                        (i32.eq (i32.load8_u (i32.const 148)) (local.get $direction)))
               (i32.eq (call $be32 (i32.const 156)) (local.get $generation)))))

  ;; How many listed validators stand by the vote `direction` on the candidate now.
  (func $tally (param $direction i32) (param $generation i32) (result i32)
    (local $i i32) (local $n i32) (local $votes i32)
    (local.set $n (call $count))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $load_entry (local.get $i) (i32.const 192))
        (call $vote_key (i32.const 204))
        (call $storageLoad (i32.const 96) (i32.const 128))
        (if (call $is_vote (local.get $direction) (local.get $generation))
          (then (local.set $votes (i32.add (local.get $votes) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $votes))

  (func $add (param $n i32)
    (call $store_entry (local.get $n) (i32.const 32))
    (call $set_position (global.get $CANDIDATE) (i32.add (local.get $n) (i32.const 1)))
    (call $set_count (i32.add (local.get $n) (i32.const 1)))
    (call $log (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 256) (i32.const 32) (i32.const 0) (i32.const 0)))

  (func $remove (param $n i32)
    (local $index i32) (local $last i32)
    (local.set $index (i32.sub (call $position (global.get $CANDIDATE)) (i32.const 1)))
    (local.set $last (i32.sub (local.get $n) (i32.const 1)))
    (if (i32.ne (local.get $index) (local.get $last)) (then  ;; the last validator takes the place
      (call $load_entry (local.get $last) (i32.const 192))
      (call $store_entry (local.get $index) (i32.const 192))
      (call $set_position (i32.const 204) (i32.add (local.get $index) (i32.const 1)))))
    (memory.fill (i32.const 192) (i32.const 0) (i32.const 32))
    (call $store_entry (local.get $last) (i32.const 192))
    (call $set_position (global.get $CANDIDATE) (i32.const 0))
    (call $set_count (local.get $last))
    (call $log (i32.const 0) (i32.const 0) (i32.const 2) (i32.const 288) (i32.const 32) (i32.const 0) (i32.const 0)))

  (func $get_validators
    (local $i i32) (local $n i32)
    (local.set $n (call $count))
    (memory.fill (i32.const 512) (i32.const 0) (i32.const 64))
    (i32.store8 (i32.const 543) (i32.const 32))  ;; the offset of the array
    (call $put_be32 (i32.const 572) (local.get $n))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $load_entry (local.get $i) (i32.add (i32.const 576) (i32.shl (local.get $i) (i32.const 5))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $finish (i32.const 512) (i32.add (i32.const 64) (i32.shl (local.get $n) (i32.const 5)))))

  ;; The arguments of proposeValidator, copied to [32, 96): a clean address and a 0 or 1.
  (func $read_arguments (result i32)
    (if (i32.lt_u (call $getCallDataSize) (i32.const 68)) (then (call $fail)))
    (call $callDataCopy (i32.const 32) (i32.const 4) (i32.const 64))
    (if (i32.or (i64.ne (i64.load (i32.const 32)) (i64.const 0)) (i32.ne (i32.load (i32.const 40)) (i32.const 0)))
      (then (call $fail)))
    (if (i32.or (i32.or (i64.ne (i64.load (i32.const 64)) (i64.const 0)) (i64.ne (i64.load (i32.const 72)) (i64.const 0)))
                (i32.or (i64.ne (i64.load (i32.const 80)) (i64.const 0))
                        (i32.or (i32.ne (i32.load (i32.const 88)) (i32.const 0))
                                (i32.gt_u (call $be32 (i32.const 92)) (i32.const 1)))))
      (then (call $fail)))
    (i32.load8_u (i32.const 95)))

  (func $propose_validator
    (local $add i32) (local $n i32) (local $direction i32) (local $generation i32)
    (local.set $add (call $read_arguments))
    (memory.fill (i32.const 160) (i32.const 0) (i32.const 12))
    (call $getCaller (global.get $CALLER))
    (if (i32.eqz (call $position (global.get $CALLER))) (then (call $fail)))
    (local.set $n (call $count))
    (if (local.get $add)
      (then (if (i32.or (i32.ne (call $position (global.get $CANDIDATE)) (i32.const 0))
                        (i32.ge_u (local.get $n) (global.get $MAX))) (then (call $fail))))
      (else (if (i32.or (i32.eqz (call $position (global.get $CANDIDATE))) (i32.le_u (local.get $n) (i32.const 1)))
              (then (call $fail)))))
    (local.set $direction (select (i32.const 1) (i32.const 2) (local.get $add)))
    (local.set $generation (call $generation))
    ;; The caller's vote, replacing any it cast on this candidate before.
    (call $vote_key (global.get $CALLER))
    (memory.fill (i32.const 128) (i32.const 0) (i32.const 32))
    (memory.copy (i32.const 128) (global.get $CANDIDATE) (i32.const 20))
    (i32.store8 (i32.const 148) (local.get $direction))
    (call $put_be32 (i32.const 156) (local.get $generation))
    (call $storageStore (i32.const 96) (i32.const 128))
    (call $log (i32.const 64) (i32.const 32) (i32.const 3) (i32.const 224) (i32.const 160) (i32.const 32) (i32.const 0))
    ;; More than half of the listed validators: the change applies, and its votes lapse.
    (if (i32.gt_u (i32.shl (call $tally (local.get $direction) (local.get $generation)) (i32.const 1)) (local.get $n))
      (then
        (if (local.get $add) (then (call $add (local.get $n))) (else (call $remove (local.get $n))))
        (call $address_key (i32.const 6) (global.get $CANDIDATE))
        (call $store_number (i32.add (local.get $generation) (i32.const 1)))))
    (call $finish (i32.const 0) (i32.const 0)))

  (func (export "main")
    (local $selector i32)
    (if (i32.lt_u (call $getCallDataSize) (i32.const 4)) (then (call $fail)))
    (call $callDataCopy (i32.const 0) (i32.const 0) (i32.const 4))
    (local.set $selector (i32.load (i32.const 0)))  ;; the 4 bytes, read little-endian
    (if (i32.eq (local.get $selector) (i32.const 0xb54dabb7)) (then (call $get_validators)))
    (if (i32.eq (local.get $selector) (i32.const 0xfb41b352)) (then (call $propose_validator)))
    (call $fail)))
