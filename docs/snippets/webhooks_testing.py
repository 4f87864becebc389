"""Test a webhook handler end to end: FakeClerk signs and delivers Clerk's events in process."""

import runpy
from pathlib import Path

from clerk_deps import ClerkSettings, get_settings
from clerk_deps.testing import FakeClerk

# The page shows the part between the markers; `app` and `users` are the route's module.
_route = runpy.run_path(str(Path(__file__).resolve().parents[2] / "examples" / "webhooks_app.py"))
app, users = _route["app"], _route["users"]

# --8<-- [start:test]
fake = FakeClerk()
endpoint = fake.add_webhook_endpoint(app, path="/webhooks/clerk")
app.dependency_overrides[get_settings] = lambda: ClerkSettings(
    webhook_signing_secret=endpoint.secret
)

ada = fake.create_user(email_address="ada@example.com")
fake.send_webhook("user.created", ada)  # what Clerk sends when someone signs up
assert users[ada["id"]]["email"] == "ada@example.com"

fake.delete_user(ada["id"])  # sends user.deleted
assert ada["id"] not in users
assert [d.status_code for d in fake.webhook_deliveries] == [200, 200]

# Svix retries a delivery with the same svix-id: the handler is safe to run again
retry = fake.redeliver(fake.webhook_deliveries[-1])
assert retry.status_code == 200 and ada["id"] not in users
# --8<-- [end:test]
