"""Four PBFT validators and a regular node, each a real process on loopback: transfers
sent to any node are committed, every block is final at once and the same on every
node, the chain goes on without one validator, stops (without a fork) without two, and
resumes when they come back, the restarted ones catching up. The fault scenarios after
it (a paused validator, every validator restarted at once, two restarted with their
chain wiped, a validator killed again and again at random moments, and one killed right
after it sent a PROPOSAL, a PREPARE or a COMMIT) each end with the history checker
(ewasm_cli/history.py) over every node."""

from __future__ import annotations

import random
import shutil
import signal
import time

import pytest
from eth_account import Account

from chain.core.keys import PrivateKey, to_checksum_address
from ewasm_cli.history import check_history

from chain_fixtures import CHAIN_ID
from local_network import full_mesh, init_datadir, wait_for

pytestmark = pytest.mark.xdist_group("consensus")  # one scenario at a time, beside the "network" group

VALIDATORS = [PrivateKey.from_hex(f"{0x60 + i:064x}") for i in range(4)]
REGULAR = PrivateKey.from_hex(f"{0x69:064x}")
SENDERS = [Account.from_key(f"{0xD0 + i:064x}") for i in range(4)]
NAMES = ["v0", "v1", "v2", "v3", "r"]


def spec() -> dict:
    return {"name": "pbft-test",
            "engine": {"pbft": {"validators": ["0x" + k.address.hex() for k in VALIDATORS], "blockPeriod": 0.3,
                                "requestTimeout": 1.0}},
            "params": {"chainId": CHAIN_ID, "gasLimit": 30_000_000},
            "accounts": {s.address: {"balance": str(10**24)} for s in SENDERS},
            "network": {"nodes": ["0x" + k.address.hex() for k in [*VALIDATORS, REGULAR]]}}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    with full_mesh(tmp_path_factory.mktemp("pbft"), spec(), NAMES, [*VALIDATORS, REGULAR]) as made:
        yield made


RECEIPTED: list[str] = []  # every transfer a node gave a receipt for, for the history checker


def transfer(sender, nonce: int) -> str:
    tx = sender.sign_transaction({"type": 2, "chainId": CHAIN_ID, "nonce": nonce, "gas": 21_000,
                                  "maxFeePerGas": 10, "maxPriorityFeePerGas": 1, "value": 1,
                                  "to": to_checksum_address((0xE00 + nonce).to_bytes(20, "big")), "accessList": []})
    return "0x" + bytes(tx.raw_transaction).hex()


def agree(nodes, names, up_to: int) -> None:
    for number in range(up_to + 1):
        hashes = {nodes[n].block_hash(number) for n in names}
        assert len(hashes) == 1, f"block {number} differs: {hashes}"


def test_transfers_to_any_node_commit_final_at_once_and_the_same_everywhere(nodes):
    hashes = [nodes[NAMES[i]].rpc("eth_sendRawTransaction", transfer(s, n))
              for n in range(3) for i, s in enumerate(SENDERS)]
    wait_for(lambda: all(nodes[name].rpc("eth_getTransactionReceipt", h) for name in NAMES for h in hashes), 60,
             "every transfer on every node")
    head = wait_for(lambda: min(nodes[n].head() for n in NAMES) >= 6 and min(nodes[n].head() for n in NAMES), 30,
                    "six blocks everywhere")
    agree(nodes, NAMES, head)
    for name in NAMES:
        latest = nodes[name].rpc("eth_getBlockByNumber", "latest", False)
        final = nodes[name].rpc("eth_getBlockByNumber", "finalized", False)  # read after: never behind it
        assert int(final["number"], 16) >= int(latest["number"], 16)
    proposers = {nodes["r"].rpc("eth_getBlockByNumber", hex(n), False)["miner"] for n in range(1, head + 1)}
    assert len(proposers) >= 3  # round-robin over heights
    status = nodes["r"].rpc("ewasm_consensusStatus")
    assert status["engine"] == "pbft" and status["finalized"] == status["head"]


def test_one_validator_down_the_chain_goes_on_two_down_it_stops_without_a_fork_and_resumes(nodes):
    nodes["v1"].kill()
    start = nodes["v0"].head()
    wait_for(lambda: nodes["v0"].head() >= start + 3, 30, "three blocks without v1")
    nodes["v2"].kill()
    time.sleep(2)  # a block already voted on may still land
    stalled = nodes["v0"].head()
    time.sleep(3)
    assert nodes["v0"].head() == stalled and nodes["v3"].head() == stalled and nodes["r"].head() == stalled
    agree(nodes, ["v0", "v3", "r"], stalled)
    nodes["v1"].start()
    nodes["v2"].start()
    back = time.monotonic()
    wait_for(lambda: nodes["v0"].head() >= stalled + 2, 60, "commits resuming with the quorum back")
    assert time.monotonic() - back < 45
    wait_for(lambda: min(nodes[n].head() for n in NAMES) >= stalled + 2, 60, "the restarted validators catching up")
    agree(nodes, NAMES, stalled + 2)


def recipient(nonce: int) -> str:
    return to_checksum_address((0xE00 + nonce).to_bytes(20, "big"))


NONCES = {s.address: 3 for s in SENDERS}  # the first test used 0-2


def send_and_confirm(nodes, via: list[str], rounds: int = 1) -> None:
    """`rounds` transfers from each sender through the nodes in `via`, until each has a receipt."""
    hashes = []
    for _ in range(rounds):
        for i, sender in enumerate(SENDERS):
            node = nodes[via[i % len(via)]]
            hashes.append(node.rpc("eth_sendRawTransaction", transfer(sender, NONCES[sender.address])))
            NONCES[sender.address] += 1
    wait_for(lambda: all(nodes[via[0]].rpc("eth_getTransactionReceipt", h) for h in hashes), 60, "the transfers")
    RECEIPTED.extend(hashes)


def check(nodes, evidence_expected: bool = False) -> None:
    """Every node up to date, then the history checker over all of them; no evidence
    unless a validator lost its vote log."""
    wait_for(lambda: min(nodes[n].head() for n in NAMES) >= max(nodes[n].head() for n in NAMES) - 1, 60,
             "every node level")
    accounts = [s.address for s in SENDERS] + [recipient(n) for n in range(max(NONCES.values()))] + \
        [to_checksum_address(k.address) for k in [*VALIDATORS, REGULAR]]
    for n in NAMES:
        assert evidence_expected or nodes[n].rpc("ewasm_evidence") == [], f"{n} recorded evidence"
    history = check_history([nodes[n].rpc_url for n in NAMES], RECEIPTED, accounts, len(SENDERS) * 10**24)
    assert history.height >= 1


def test_a_validator_paused_past_several_round_timers_catches_up_when_it_resumes(nodes):
    send_and_confirm(nodes, ["v0", "v1"])
    nodes["v3"].process.send_signal(signal.SIGSTOP)
    try:
        start = nodes["v0"].head()
        wait_for(lambda: nodes["v0"].head() >= start + 4, 60, "blocks without v3")  # its heights time out
        send_and_confirm(nodes, ["v0", "v2"])
    finally:
        nodes["v3"].process.send_signal(signal.SIGCONT)
    head = nodes["v0"].head()
    wait_for(lambda: nodes["v3"].head() >= head, 60, "v3 catching up")
    check(nodes)


def test_every_validator_restarted_at_once_resumes_and_so_do_two_restarted_with_their_chain_wiped(nodes, tmp_path):
    for name in NAMES[:4]:
        nodes[name].kill()
    for name in NAMES[:4]:
        nodes[name].start()
    stalled = nodes["r"].head()
    wait_for(lambda: nodes["v0"].head() >= stalled + 2, 60, "commits after everyone restarted")
    send_and_confirm(nodes, ["v1", "r"])
    for name in ("v2", "v3"):  # fewer than a quorum keep the chain (Besu #8307)
        nodes[name].kill()
        shutil.rmtree(nodes[name].datadir)
        init_datadir(spec(), nodes[name].datadir)
        nodes[name].start()
    head = nodes["v0"].head()
    wait_for(lambda: min(nodes[n].head() for n in ("v2", "v3")) >= head, 60, "the wiped validators syncing")
    wait_for(lambda: nodes["v0"].head() >= head + 2, 60, "commits with the wiped validators back")
    send_and_confirm(nodes, ["v2", "v3"])
    check(nodes, evidence_expected=True)  # a wiped validator lost its vote log too: it may propose anew


def test_a_validator_killed_again_and_again_at_random_moments_never_signs_twice(nodes):
    rng = random.Random(7)
    for _ in range(4):
        time.sleep(rng.uniform(0.1, 1.2))  # anywhere in a height: before, between or after its votes
        nodes["v1"].kill()
        nodes["v1"].start()
        send_and_confirm(nodes, ["v0", "v2", "r"])
    head = nodes["v0"].head()
    wait_for(lambda: nodes["v1"].head() >= head, 60, "v1 catching up")
    check(nodes)


@pytest.mark.parametrize("vote", ["proposal", "prepare", "commit"])
def test_a_validator_killed_right_after_a_vote_never_contradicts_it_when_it_comes_back(nodes, vote):
    """With v3 down the other three are exactly a quorum: nothing commits while v0 is
    dead, and v0 comes back at the height it died in (its vote log decides what it may
    sign there)."""
    evidence = {n: len(nodes[n].rpc("ewasm_evidence")) for n in NAMES}
    crashing = nodes["v0"]
    nodes["v3"].kill()
    crashing.stop()
    crashing.extra = ("--test-fault", f"crash-after:{vote}")
    try:
        crashing.start()
        assert crashing.process.wait(timeout=60) == -signal.SIGKILL
        assert f"SIGKILL right after sending a {vote.upper()}" in crashing.log.read_text()
        time.sleep(1)  # a block that had its quorum before the crash lands
        stalled = nodes["v1"].head()
        time.sleep(2)
        assert nodes["v1"].head() == stalled, "a block committed without v0 and v3"
    finally:
        crashing.extra = ()
    crashing.start()
    wait_for(lambda: nodes["v1"].head() >= stalled + 2, 60, "commits with v0 back")
    nodes["v3"].start()
    send_and_confirm(nodes, ["v1", "r"])
    wait_for(lambda: nodes["v3"].head() >= nodes["v1"].head() - 1, 60, "v3 catching up")
    for n in NAMES:
        assert len(nodes[n].rpc("ewasm_evidence")) == evidence[n], f"{n} saw v0 contradict a vote it signed"
    check(nodes, evidence_expected=True)
