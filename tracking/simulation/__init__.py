"""The fleet simulator: a hidden world (tracking/simulation/world.py), what it makes each route
do (timeline.py), and the phones that report it over HTTP (runner.py). docs/SIMULATION.md."""
