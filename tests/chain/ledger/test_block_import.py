"""Block import: what one node builds, another accepts; any single-field corruption of it
is refused with the reason, and leaves the importing chain as it was."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain.consensus.instant.rules import InstantRules
from chain.consensus.poa.rules import PoaRules
from chain.consensus.poa.seal import sign_header
from chain.consensus.poa.steps import encode_step
from chain.core.blocks import Block, InvalidBlock
from chain.core.keys import PrivateKey
from chain.core.spec import parse_spec
from chain.ledger.blockchain import Blockchain
from chain.ledger.state_transition import MAX_FUTURE_DRIFT
from chain.tx.codec import decode_transaction
from chain.tx.signing import sign_scoped_transaction
from contracts.token import balance_slot, transfer_data

from chain_fixtures import CHAIN_ID, token_spec

AUTHORITY = PrivateKey.from_hex("a1" * 32)
SENDERS = [PrivateKey.from_hex(f"{i + 1:064x}") for i in range(3)]
TOKEN = b"\x70" * 20
RECIPIENT = b"\x99" * 20
RULES = PoaRules(lambda height: (AUTHORITY.address,), step_duration=1.0, clock=lambda: 10**6)  # steps are whole seconds


GENESIS_TIME = 10


def poa_spec() -> dict:
    spec = token_spec([k.address for k in SENDERS], [TOKEN], tokens_each=1000,
                      engine={"poa": {"authority": "0x" + AUTHORITY.address.hex(), "blockPeriod": 1}})
    return {**spec, "genesis": {"timestamp": GENESIS_TIME}}


def new_chain(directory: str, name: str, spec: dict | None = None) -> Blockchain:
    return Blockchain.initialize(str(Path(directory) / name), parse_spec(spec or poa_spec()))


def transfer(key: PrivateKey, nonce: int, amount: int):
    return decode_transaction(sign_scoped_transaction(
        key, chain_id=CHAIN_ID, nonce=nonce, gas_limit=200_000, to=TOKEN, data=transfer_data(RECIPIENT, amount),
        scope=[key.address, TOKEN], max_fee_per_gas=2, max_priority_fee_per_gas=2))


def seal(header):
    return sign_header(AUTHORITY, header)


def build(chain: Blockchain, txs, timestamp: int) -> Block:
    """A block sealed by the authority in step `timestamp` (steps of one second)."""
    block, _ = chain.build_block(txs, AUTHORITY.address, timestamp=timestamp, seal=seal,
                                 validators=[AUTHORITY.address], extra_data=encode_step(timestamp))
    return block


def state_of(chain: Blockchain) -> tuple:
    head = chain.head()
    return head.hash, chain.tree.root, chain.store.head_number(), head.state_root


def test_blocks_built_on_one_node_are_imported_by_another_into_the_same_state(tmp_path):
    builder, follower = new_chain(tmp_path, "a"), new_chain(tmp_path, "b")
    blocks = [build(builder, [transfer(SENDERS[0], 0, 5), transfer(SENDERS[1], 0, 10**9)], timestamp=12),
              build(builder, [transfer(SENDERS[0], 1, 7)], timestamp=13),
              build(builder, [], timestamp=14)]
    for block in blocks:
        execution = follower.import_block(block, RULES, now=block.header.timestamp)
        assert [r.encode() for r in execution.receipts] == \
            [builder.store.receipt(decode_transaction(raw).hash).encode() for raw in block.transactions]
    assert state_of(follower) == state_of(builder)
    with follower.snapshot() as snap:
        assert int.from_bytes(snap.get_storage(TOKEN, balance_slot(RECIPIENT)), "big") == 12
    assert follower.store.receipt(decode_transaction(blocks[0].transactions[1]).hash).status == 0  # the overdraft
    builder.close()
    follower.close()


def reseal(block: Block, **fields) -> Block:
    """The block with header fields changed and sealed again by the authority itself: a
    dishonest proposer, whom only the content checks can catch."""
    header = replace(block.header, **fields)
    return Block(header.with_seal(seal(header)), block.transactions)


def with_body(block: Block, transactions) -> Block:
    return Block(block.header, tuple(transactions))


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def corruptions(block: Block, spare_raw: bytes) -> list[tuple[str, Block, str]]:
    """(what, corrupted block, what the refusal must mention) for each single change."""
    h = block.header
    txs = block.transactions
    out = [
        ("shard id", reseal(block, shard_id=h.shard_id + 1), "shard"),
        ("number", reseal(block, number=h.number + 1), "does not follow"),
        ("parent hash", reseal(block, parent_hash=flip(h.parent_hash)), "parent hash"),
        ("timestamp before the parent", reseal(block, timestamp=GENESIS_TIME - 1), "before its parent"),
        ("timestamp in the future", reseal(block, timestamp=h.timestamp + MAX_FUTURE_DRIFT + 1), "in the future"),
        ("proposer", reseal(block, proposer=b"\x42" * 20), "belongs to validator"),
        ("step", reseal(block, extra_data=encode_step(h.timestamp + 1)), "not the start of step"),
        ("state root", reseal(block, state_root=flip(h.state_root)), "state root"),
        ("transactions root", reseal(block, transactions_root=flip(h.transactions_root)), "transactions root"),
        ("receipts root", reseal(block, receipts_root=flip(h.receipts_root)), "receipts root"),
        ("outgoing receipts root", reseal(block, outgoing_receipts_root=flip(h.outgoing_receipts_root)),
         "outgoing receipts root"),
        ("validator set", reseal(block, validator_set_hash=flip(h.validator_set_hash)), "validator-set"),
        ("gas limit", reseal(block, gas_limit=h.gas_limit + 1), "gas limit"),
        ("gas used", reseal(block, gas_used=h.gas_used + 1), "gas used"),
        ("extra data", reseal(block, extra_data=b"x" * 33), "extra data"),
        ("no step", reseal(block, extra_data=b""), "carries its step"),
        ("seal", Block(h.with_seal(h.seal[:10] + flip(h.seal[10:])), txs), "seal"),
        ("no seal", Block(h.with_seal(b""), txs), "seal"),
        ("a field without a new seal", Block(replace(h, gas_used=h.gas_used + 1), txs), "sealed by"),
        ("an extra transaction", with_body(block, [*txs, spare_raw]), "block"),
        ("a garbage transaction", with_body(block, [*txs, b"\x02\xc0"]), "transaction"),
    ]
    if txs:
        out += [
            ("a dropped transaction", with_body(block, txs[:-1]), "block"),
            ("a replayed transaction", with_body(block, [*txs, txs[0]]), "invalid where it stands"),
            ("a corrupted signature", with_body(block, [*txs[:-1], txs[-1][:-1] + bytes([txs[-1][-1] ^ 1])]),
             "transaction"),
        ]
    if len(txs) >= 2:
        out.append(("two transactions swapped", with_body(block, [txs[1], txs[0], *txs[2:]]), "block"))
    return out


plans = st.lists(st.tuples(st.integers(0, len(SENDERS) - 1), st.integers(0, 1200)), max_size=5)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans)
def test_every_built_block_imports_and_every_single_field_corruption_of_it_is_refused(plan):
    with tempfile.TemporaryDirectory() as tmp:
        builder, follower = new_chain(tmp, "a"), new_chain(tmp, "b")
        nonces = [0] * len(SENDERS)
        txs = []
        for sender, amount in plan:  # amounts above 1000 overdraw: reverted, still included
            txs.append(transfer(SENDERS[sender], nonces[sender], amount))
            nonces[sender] += 1
        block = build(builder, txs, timestamp=20)
        spare = transfer(SENDERS[0], nonces[0], 1).raw
        before = state_of(follower)
        for what, corrupted, reason in corruptions(block, spare):
            with pytest.raises(InvalidBlock) as refused:
                follower.import_block(corrupted, RULES, now=block.header.timestamp)
                pytest.fail(f"{what}: accepted")
            assert reason in str(refused.value), (what, str(refused.value))
            assert state_of(follower) == before, what
        follower.import_block(block, RULES, now=block.header.timestamp)
        assert state_of(follower) == state_of(builder)
        builder.close()
        follower.close()


def test_an_instant_chain_refuses_a_sealed_block_and_one_that_names_validators(tmp_path):
    spec = token_spec([k.address for k in SENDERS], [TOKEN])
    builder, follower = new_chain(tmp_path, "a", spec), new_chain(tmp_path, "b", spec)
    block, _ = builder.build_block([transfer(SENDERS[0], 0, 1)], b"\x0c" * 20, timestamp=5)
    with pytest.raises(InvalidBlock, match="seals nothing"):
        follower.import_block(Block(block.header.with_seal(b"\x01" * 65), block.transactions), InstantRules(), now=5)
    with pytest.raises(InvalidBlock, match="no validators"):
        follower.import_block(Block(replace(block.header, validator_set_hash=b"\x01" * 32), block.transactions),
                              InstantRules(), now=5)
    follower.import_block(block, InstantRules(), now=5)
    assert state_of(follower) == state_of(builder)
    builder.close()
    follower.close()


def test_a_candidate_that_is_discarded_leaves_the_tree_at_the_head(tmp_path):
    chain = new_chain(tmp_path, "a")
    before = state_of(chain)
    with chain.lock:
        candidate = chain.build([transfer(SENDERS[0], 0, 5)], AUTHORITY.address, timestamp=3, seal=seal)
        assert chain.tree.root == candidate.block.header.state_root != before[1]
        chain.discard(candidate)
    assert state_of(chain) == before
    chain.close()


def entries(chain: Blockchain) -> list:
    with chain.snapshot() as snap:
        return list(snap.commitment_entries())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(plans, min_size=1, max_size=4), st.data())
def test_reverting_blocks_restores_the_state_and_records_of_the_block_below_exactly(blocks, data):
    """What a node does to switch forks: every block above the common ancestor is taken
    back; state, commitment and records are then those of the ancestor, and the chain
    builds on from there as if the reverted blocks never were."""
    with tempfile.TemporaryDirectory() as tmp:
        chain = new_chain(tmp, "a")
        chain.keep_undo = True
        nonces, states, included = [0] * len(SENDERS), [], []
        for number, plan in enumerate(blocks, start=1):
            states.append((state_of(chain), entries(chain)))
            txs = []
            for sender, amount in plan:
                txs.append(transfer(SENDERS[sender], nonces[sender], amount))
                nonces[sender] += 1
            block = build(chain, txs, timestamp=20 + number)
            included.append([decode_transaction(raw).hash for raw in block.transactions])
        keep = data.draw(st.integers(0, len(blocks) - 1))
        reverted = chain.revert_to(keep)
        assert [b.number for b in reverted] == list(range(len(blocks), keep, -1))
        assert (state_of(chain), entries(chain)) == states[keep]
        assert chain.context(AUTHORITY.address).block_hashes == {n: chain.store.header(n).hash for n in range(keep + 1)}
        for hashes in included[keep:]:
            assert all(chain.store.transaction(h) is None and chain.store.receipt(h) is None for h in hashes)
        assert chain.store.block(keep + 1) is None and list(chain.store.logs(keep + 1, 10**6)) == []
        build(chain, [], timestamp=40)  # and the chain goes on from there
        reopened_state = state_of(chain)
        chain.close()
        reopened = Blockchain.open(str(Path(tmp) / "a"))
        assert state_of(reopened) == reopened_state
        reopened.close()


def test_a_final_block_cannot_be_reverted(tmp_path):
    from chain.state.store import StoreError

    chain = new_chain(tmp_path, "a")
    chain.keep_undo = True
    build(chain, [transfer(SENDERS[0], 0, 1)], timestamp=20)
    build(chain, [transfer(SENDERS[0], 1, 1)], timestamp=21)
    chain.finalize(1)
    assert chain.finalized == 1 and chain.store.finalized_number() == 1
    assert [b.number for b in chain.revert_to(1)] == [2]
    with pytest.raises(StoreError, match="block 1 is final"):
        chain.revert_to(0)
    assert chain.head().number == 1
    chain.close()
