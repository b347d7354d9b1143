"""The subscription hub over a real chain: each feed starts when its first subscriber
comes, a head that moves to another fork is reported from where the forks meet, and
the feed goes on after it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from chain.core.spec import dev_spec, parse_spec
from chain.ledger.blockchain import Blockchain
from chain.rpc.subscriptions import SubscriptionHub

PROPOSER = b"\x0c" * 20


@pytest.fixture
def chain(tmp_path):
    chain = Blockchain.initialize(str(tmp_path / "db"), parse_spec(dev_spec(b"\x01" * 20)))
    chain.keep_undo = True  # blocks stay revertible, as on an engine that can fork
    yield chain
    chain.close()


def heads(notes) -> list[tuple[int, str]]:
    return [(int(result["number"], 16), result["hash"]) for _, _, result in notes]


def build(chain, count: int, timestamp: int) -> list[str]:
    return ["0x" + chain.build_block([], PROPOSER, timestamp=timestamp + i)[0].hash.hex() for i in range(count)]


def test_a_reorg_is_reported_from_where_the_forks_meet_and_the_feed_goes_on(chain):
    hub = SubscriptionHub(SimpleNamespace(chain=chain))
    build(chain, 3, timestamp=10)  # blocks before the subscription are not sent
    hub.subscribe("client", ["newHeads"])
    first = build(chain, 3, timestamp=20)
    assert heads(hub.poll()) == list(zip((4, 5, 6), first))
    chain.revert_to(4)
    assert hub.poll() == []  # the head went back: nothing new yet
    branch = build(chain, 4, timestamp=40)
    assert heads(hub.poll()) == list(zip((5, 6, 7, 8), branch))
    after = build(chain, 1, timestamp=50)
    assert heads(hub.poll()) == [(9, after[0])]


def test_a_reorg_deeper_than_what_the_hub_remembers_after_it_restarted_is_still_reported(chain):
    hub = SubscriptionHub(SimpleNamespace(chain=chain))
    build(chain, 5, timestamp=10)
    hub.subscribe("client", ["newHeads"])  # remembers only block 5
    chain.revert_to(2)
    assert hub.poll() == []
    branch = build(chain, 4, timestamp=30)
    assert heads(hub.poll()) == list(zip((3, 4, 5, 6), branch))


def test_a_feed_starts_afresh_for_its_first_subscriber_and_ends_with_its_last(chain):
    hub = SubscriptionHub(SimpleNamespace(chain=chain))
    hub.subscribe("a", ["newHeads"])
    build(chain, 2, timestamp=10)
    assert len(hub.poll()) == 2
    hub.drop("a")
    build(chain, 3, timestamp=20)  # nobody listens: not kept for later
    later = hub.subscribe("b", ["newHeads"])
    assert hub.poll() == []
    build(chain, 1, timestamp=30)
    assert [(who, sid) for who, sid, _ in hub.poll()] == [("b", later)]
    assert hub.unsubscribe("a", later) is False and hub.wants("b", later)


def test_a_connection_holds_a_bounded_number_of_filter_addresses_and_topics(chain):
    from chain.rpc.codec import RpcError
    from chain.rpc.subscriptions import MAX_CRITERIA_PER_CONNECTION

    hub = SubscriptionHub(SimpleNamespace(chain=chain))
    many = {"address": ["0x%040x" % i for i in range(1, 1001)]}
    for _ in range(MAX_CRITERIA_PER_CONNECTION // 1000):
        hub.subscribe("greedy", ["logs", many])
    with pytest.raises(RpcError, match="at most"):
        hub.subscribe("greedy", ["logs", many])
    hub.subscribe("other", ["logs", many])  # another connection is not held back
