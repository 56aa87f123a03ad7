"""How work is shared between torchrun processes (pure logic: worlds of several ranks without a process group)."""
from __future__ import annotations

import torch

from vs_stdo.train.world import World


def test_every_frame_belongs_to_exactly_one_rank():
    for size in (1, 2, 3, 5):
        shares = [list(World(rank, size).share(11)) for rank in range(size)]
        assert sorted(sum(shares, [])) == list(range(11))
        assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_local_items_index_each_ranks_own_frames():
    items = torch.tensor([[f, p] for f in range(7) for p in range(3)])
    for size in (1, 2, 3):
        seen = []
        for rank in range(size):
            world = World(rank, size)
            mine, local = world.local(items)
            frames = list(world.share(7))
            assert all(frames[f] == g for (f, _), (g, _) in zip(local.tolist(), items[mine].tolist()))
            assert torch.equal(local[:, 1], items[mine][:, 1])
            seen += items[mine].tolist()
        assert sorted(seen) == items.tolist()


def test_a_world_of_one_holds_every_frame_and_gathers_nothing():
    world = World()
    assert world.main and world.share(5) == range(5)
    items = torch.tensor([[0, 1], [3, 2], [4, 0]])
    mine, local = world.local(items)
    assert mine.all() and torch.equal(local, items)
    assert world.first(7.5) == 7.5 and world.any(True) and not world.any(False)
