"""Third-party carrier feeds: adapters that normalize a carrier's status events and files onto
the platform's statuses and reason taxonomy, applied through the scan service
(docs/CARRIER_FEEDS.md).

A Django app of its own (label `carrier_feeds`) because it sits above `tracking` in the layers,
while `carriers` proper (carriers, drivers, vehicles, devices) sits below it."""
