"""Validator-set changes voted on chain (scenario 8), each node a real process on
loopback: validators vote a regular node in and then an original validator out through
ewasm_proposeValidatorVote; each change takes effect at its epoch boundary, for PBFT and
for PoA, and a node that syncs from genesis afterwards derives the same sets. Liveness
proves each change: with PBFT's quorum of ceil(2n/3), the chain goes on with two nodes
down only once the removed validator no longer counts, and the newcomer must vote for
that."""

from __future__ import annotations

import pytest

from chain.core.keys import PrivateKey
from chain.ledger.validator_sets import next_epoch_boundary
from ewasm_cli.history import check_history
from ewasm_cli.network_commands import FUNDS, engine_spec, network_spec

from chain_fixtures import CHAIN_ID
from local_network import NodeProcess, free_ports, full_mesh, init_datadir, wait_for

pytestmark = pytest.mark.xdist_group("consensus")  # one scenario at a time, beside the "network" group

KEYS = [PrivateKey.from_hex(f"{0x60 + i:064x}") for i in range(6)]  # v0 v1 v2 v3, then r, then a late node
ADMIN = PrivateKey.from_hex(f"{0x6F:064x}")
EPOCH = 10


def spec(engine: str, validators: int) -> dict:
    class Args:  # network init's settings, with short timings
        step_duration, block_period, request_timeout, epoch_length = 0.5, 0.25, 1.0, EPOCH
    Args.engine = engine
    ids = [k.address for k in KEYS]
    return network_spec(engine_spec(Args, ids[:validators]), ids, ADMIN.address, ids, chain_id=CHAIN_ID)


def hexes(keys) -> list[str]:
    return sorted("0x" + k.address.hex() for k in keys)


def vote(nodes: dict[str, NodeProcess], voters: list[str], candidate: PrivateKey, add: bool) -> int:
    """Each voter node votes with its own key; the block where the last vote landed."""
    hashes = [nodes[v].rpc("ewasm_proposeValidatorVote", "0x" + candidate.address.hex(), add) for v in voters]
    receipts = [wait_for(lambda h=h, v=v: nodes[v].rpc("eth_getTransactionReceipt", h), 30, "the vote's receipt")
                for v, h in zip(voters, hashes)]
    assert all(r["status"] == "0x1" for r in receipts), receipts
    return max(int(r["blockNumber"], 16) for r in receipts)


def validators_of(node: NodeProcess) -> list[str]:
    return sorted(v.lower() for v in node.rpc("ewasm_consensusStatus")["validators"])


def miners(node: NodeProcess, first: int, last: int) -> set[str]:
    wait_for(lambda: node.head() >= last, 60, f"block {last}")
    return {node.rpc("eth_getBlockByNumber", hex(n), False)["miner"].lower() for n in range(first, last + 1)}


def history(nodes) -> None:
    urls = [n.rpc_url for n in nodes]
    check_history(urls, [], ["0x" + k.address.hex() for k in [*KEYS, ADMIN]], FUNDS * len(KEYS))


def test_pbft_votes_a_regular_node_in_and_a_validator_out_each_at_its_epoch_boundary(tmp_path):
    v0, v1, v2, v3, r, late = KEYS
    names = ["v0", "v1", "v2", "v3", "r"]
    with full_mesh(tmp_path, spec("pbft", 4), names, KEYS[:5]) as nodes:
        assert validators_of(nodes["r"]) == hexes([v0, v1, v2, v3])
        with pytest.raises(AssertionError, match="not a validator: only validators vote"):
            nodes["r"].rpc("ewasm_proposeValidatorVote", "0x" + r.address.hex(), True)
        with pytest.raises(AssertionError, match="is a validator already"):
            nodes["v0"].rpc("ewasm_proposeValidatorVote", "0x" + v1.address.hex(), True)

        # r in: three of four agree. It takes over at the boundary, and proposes in turn.
        landed = vote(nodes, ["v0", "v1", "v2"], r, True)
        assert sorted(v.lower() for v in nodes["v0"].rpc("ewasm_consensusStatus")["nextValidators"]) == hexes(
            [v0, v1, v2, v3, r])
        boundary = next_epoch_boundary(landed, EPOCH)
        assert "0x" + r.address.hex() not in miners(nodes["v0"], 1, boundary)
        assert "0x" + r.address.hex() in miners(nodes["v0"], boundary + 1, boundary + 10)
        assert validators_of(nodes["v3"]) == hexes([v0, v1, v2, v3, r])

        # With five validators the quorum is four: the chain going on with v2 down needs r's votes.
        nodes["v2"].kill()
        start = nodes["v0"].head()
        wait_for(lambda: nodes["v0"].head() >= start + 3, 60, "blocks without v2, with r voting")

        # v3 out: three of five agree. After the boundary four validators remain (quorum three),
        # so with v2 and v3 both down the other three still commit.
        landed = vote(nodes, ["v0", "v1", "r"], v3, False)
        boundary = next_epoch_boundary(landed, EPOCH)
        wait_for(lambda: nodes["v0"].head() >= boundary + 1, 60, "the boundary")
        nodes["v3"].kill()
        wait_for(lambda: nodes["r"].head() >= boundary + 4, 60, "blocks with v2 and v3 down")
        assert validators_of(nodes["r"]) == hexes([v0, v1, v2, r])

        # A node that syncs from genesis imports every block, each against the set of its height.
        nodes["v2"].start()
        init_datadir(spec("pbft", 4), tmp_path / "late")
        latecomer = NodeProcess("late", late, tmp_path / "late", free_ports(1)[0], [nodes["v0"].p2p_port],
                                tmp_path / "late.log").start()
        try:
            head = nodes["v0"].head()
            wait_for(lambda: latecomer.head() >= head and nodes["v2"].head() >= head, 60, "v2 and the latecomer")
            assert validators_of(latecomer) == hexes([v0, v1, v2, r])
            history([nodes["v0"], nodes["v1"], nodes["v2"], nodes["r"], latecomer])
        finally:
            latecomer.stop()


def test_poa_votes_a_regular_node_in_and_a_validator_out_each_at_its_epoch_boundary(tmp_path):
    v0, v1, v2, r = KEYS[0], KEYS[1], KEYS[2], KEYS[4]
    names = ["v0", "v1", "v2", "r"]
    with full_mesh(tmp_path, spec("poa", 3), names, [v0, v1, v2, r]) as nodes:
        landed = vote(nodes, ["v0", "v1"], r, True)  # two of three
        boundary = next_epoch_boundary(landed, EPOCH)
        assert "0x" + r.address.hex() not in miners(nodes["v0"], 1, boundary)
        assert "0x" + r.address.hex() in miners(nodes["v0"], boundary + 1, boundary + 8)

        landed = vote(nodes, ["v0", "v1", "r"], v2, False)  # three of four
        boundary = next_epoch_boundary(landed, EPOCH)
        assert "0x" + v2.address.hex() not in miners(nodes["v0"], boundary + 1, boundary + 8)
        assert validators_of(nodes["v2"]) == hexes([v0, v1, r])
        history(list(nodes.values()))
