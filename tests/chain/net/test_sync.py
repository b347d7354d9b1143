"""Catching up: a node says it is syncing (eth_syncing) only while it is at least
SYNC_LAG blocks behind its highest peer, keeps the block it started from while it
catches up, and says so no longer once it is level."""

from __future__ import annotations

from chain.net.sync import SYNC_LAG, BlockSync, sync_progress


def test_one_block_in_flight_is_not_syncing_but_falling_behind_is():
    assert sync_progress(10, 10 + SYNC_LAG - 1, None) == (None, None)
    assert sync_progress(10, 30, None) == ((10, 10, 30), 10)


def test_the_starting_block_stays_while_the_node_catches_up_and_resets_once_level():
    progress, started = sync_progress(10, 30, None)
    progress, started = sync_progress(25, 31, started)
    assert progress == (10, 25, 31)
    assert sync_progress(31, 31, started) == (None, None)


def test_the_highest_block_is_the_highest_any_connected_peer_has_shown():
    sync = BlockSync()
    assert sync.highest() == -1
    sync.on_head(b"a", 5)
    sync.on_head(b"b", 9)
    sync.on_head(b"a", 3)  # a peer's head never goes back
    assert sync.highest() == 9
    sync.on_peer_gone(b"b")
    assert sync.highest() == 5
