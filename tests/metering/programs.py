"""Random integer programs for differential tests: WAT text built by hypothesis strategies.

Every program terminates (loops run a bounded count), uses blocks, loops, if/else,
br_if, br_table, return, calls, memory stores, bulk memory and memory.grow, so the
metering passes see all their cases. Memory is observable after a trap, which lets the
tests compare *where* execution stopped, not only whether it did.
"""

from __future__ import annotations

from hypothesis import strategies as st

BINOPS = ["i32.add", "i32.sub", "i32.mul", "i32.and", "i32.or", "i32.xor", "i32.shl", "i32.shr_u", "i32.rotl", "i32.lt_u", "i32.eq"]


def expr(draw, depth: int) -> str:
    choice = draw(st.integers(0, 5 if depth < 3 else 2))
    if choice == 0:
        return f"(i32.const {draw(st.integers(-100, 1000))})"
    if choice in (1, 2):
        return f"(local.get ${draw(st.sampled_from('ab'))})"
    if choice == 3:
        return f"(i32.load (i32.and {expr(draw, depth + 1)} (i32.const 0xfffc)))"
    if choice == 4:
        return f"(call $helper {expr(draw, depth + 1)})"
    return f"({draw(st.sampled_from(BINOPS))} {expr(draw, depth + 1)} {expr(draw, depth + 1)})"


def stmt(draw, depth: int) -> str:
    top = 9 if depth < 3 else 3
    choice = draw(st.integers(0, top))
    if choice in (0, 1):
        return f"(local.set ${draw(st.sampled_from('ab'))} {expr(draw, 0)})"
    if choice == 2:
        # a store records progress in memory, so an out-of-gas point becomes visible
        return f"(i32.store (i32.and {expr(draw, 0)} (i32.const 0xfffc)) (local.get $a))"
    if choice == 3:
        return f"(i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))"
    if choice == 4:
        return f"(if {expr(draw, 0)} (then {stmts(draw, depth + 1)}) (else {stmts(draw, depth + 1)}))"
    if choice == 5:
        return f"(block {stmts(draw, depth + 1)} (br_if 0 {expr(draw, 0)}) {stmts(draw, depth + 1)})"
    if choice == 6:
        counter = f"$c{depth}"
        n = draw(st.integers(0, 6))
        return (
            f"(local.set {counter} (i32.const {n})) (block (loop {stmts(draw, depth + 1)} "
            f"(br_if 1 (i32.eqz (local.get {counter}))) (local.set {counter} (i32.sub (local.get {counter}) (i32.const 1))) (br 0)))"
        )
    if choice == 7:
        return (
            f"(block (block (block (br_table 0 1 2 (i32.and {expr(draw, 0)} (i32.const 3)))) "
            f"{stmts(draw, depth + 1)}) {stmts(draw, depth + 1)})"
        )
    if choice == 8:
        op = draw(st.sampled_from(["fill", "copy", "grow"]))
        if op == "fill":
            return f"(memory.fill (i32.const 64) (local.get $a) (i32.and {expr(draw, 0)} (i32.const 255)))"
        if op == "copy":
            return f"(memory.copy (i32.const 512) (i32.const 64) (i32.and {expr(draw, 0)} (i32.const 127)))"
        return f"(drop (memory.grow (i32.and {expr(draw, 0)} (i32.const 1))))"
    return f"(if {expr(draw, 0)} (then (return (local.get $b))))"


def stmts(draw, depth: int) -> str:
    return " ".join(stmt(draw, depth) for _ in range(draw(st.integers(0, 3))))


@st.composite
def programs(draw) -> str:
    """A module exporting `run(i32) -> i32` and its memory."""
    body = stmts(draw, 0)
    helper = stmts(draw, 2)
    locals_ = " ".join(f"(local $c{d} i32)" for d in range(4))
    return f"""(module
  (memory (export "memory") 1 4)
  (func $helper (param $a i32) (result i32) (local $b i32) {locals_.replace('$c', '$h')}
    (local.set $b (i32.const 7)) {helper.replace('$c', '$h').replace('(call $helper', '(i32.popcnt')} (i32.add (local.get $a) (local.get $b)))
  (func (export "run") (param $a i32) (result i32) (local $b i32) {locals_}
    (local.set $b (i32.const 3)) {body} (i32.xor (local.get $a) (local.get $b))))"""
