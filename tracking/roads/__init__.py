"""The road network: import (OpenStreetMap-derived data), routing and travel-time matrices.
Map data © OpenStreetMap contributors, ODbL."""
