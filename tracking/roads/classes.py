"""Road classes of a leg, from what any router gives: its length and its free-flow time.

One rule, read by the simulator's rich world (rush hours hit arterials harder, the school run
slows local streets) and by the ETA learner (travel factors by road class), so both classify a
leg the same way.
"""

from __future__ import annotations

ARTERIAL_KMH = 35.0  # free-flow average at or above this: avenues and highways, not side streets


def road_class(length_m: float, free_flow_s: float) -> str:
    """ "arterial" when the leg's free-flow average speed (path length / free-flow time) is at
    least ARTERIAL_KMH, else "local" (a zero-time leg is local: it goes nowhere)."""
    if free_flow_s <= 0:
        return "local"
    return "arterial" if length_m / free_flow_s * 3.6 >= ARTERIAL_KMH else "local"
