"""Ingestion: what devices, scanners and carrier systems send, validated, normalized,
deduplicated and stored durably (see docs/INGEST.md)."""
