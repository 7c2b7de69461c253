"""The ops manager's /reports/ pages: SLA scorecards, charts, drill-downs, period comparison
(docs/REPORTS.md). The numbers come from carriers.sla.selectors; the exports from the reports
API."""
