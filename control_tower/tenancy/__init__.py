"""Row-level multi-tenancy: every tenant-owned row carries an organization, and every query on
tenant data runs inside an organization scope or raises (fail closed).

The scope is a context variable set by
- API authentication (`control_tower.api.authentication`) and the page middleware,
- the websocket middleware (`control_tower.tenancy.websocket`),
- the `@organization_task` decorator for Celery tasks,
- the `organization_scope()` context manager for commands and scripts.
"""
