"""SLA metrics, daily roll-ups and scorecards: every carrier held to the same numbers
(docs/REPORTS.md).

A Django app of its own (label `sla`) because it reads deliveries, scans, proofs, pings and
alerts, so it sits above `tracking` and `exceptions`, while `carriers` proper sits below them."""
