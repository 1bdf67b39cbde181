"""Private copies of the generated worlds that fixtures share: a test's sandbox changes its world
(the clock advances, pushes write to it), so each test serves its own copy."""

from __future__ import annotations

from leadsync.sandbox.world import World, generate_world


def private_copy(world: World) -> World:
    """A world equal to ``world``, which must be as ``generate_world`` made it (a shared fixture that
    no test changes). It is generated again from its size, seed, time and span: the generator gives
    the same bytes for the same arguments, at a quarter of ``copy.deepcopy``'s CPU (0.06 s against
    0.24 s for 150 persons)."""
    made = generate_world(len(world.persons), world.seed, now=world.now, days=(world.now - world.start).days)
    if (made.start, len(made.persons), made.event_count) != (
        world.start,
        len(world.persons),
        world.event_count,
    ):
        raise ValueError("private_copy: the world was changed after it was generated; use copy.deepcopy")
    return made
