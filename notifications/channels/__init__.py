"""The wire: how a rendered notification leaves the platform (email, SMS). docs/NOTIFICATIONS.md.

`base.py` is the whole contract between the notification services and a channel; a new SMS
provider is one module implementing `SmsBackend`.
"""
