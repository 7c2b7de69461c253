"""Carrier feed models (filled in by the carrier feeds work)."""
