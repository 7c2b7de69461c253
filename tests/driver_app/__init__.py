"""The driver app's own endpoints (the phone's session and day), named once for the
cross-tenant and carrier matrices, with the test that proves their isolation."""

DRIVER_APP_OPERATIONS = [
    ("/api/v1/driver/session/", "post"),
    ("/api/v1/driver/session/", "get"),
    ("/api/v1/driver/session/", "delete"),
    ("/api/v1/driver/today/", "get"),
]
DRIVER_APP_ISOLATION_TEST = (
    "tests/driver_app/test_today.py::test_another_driver_carrier_or_organization_is_out_of_reach"
)
