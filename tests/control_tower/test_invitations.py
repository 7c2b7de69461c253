"""Memberships by invitation: an owner or admin invites an e-mail; the person accepts through a
secret, expiring link; nothing about an existing account is disclosed to the inviter; a person
in several organizations keeps a default one."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils import timezone

from control_tower.models import Invitation, Membership, Profile
from control_tower.tenancy.middleware import SESSION_KEY
from control_tower.tenancy.roles import Role
from control_tower.tenancy.scope import dangerously_all_organizations, organization_scope
from tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db

User = get_user_model()
INVITATIONS = "/api/v1/invitations/"


def invite(client, email, role="dispatcher", **extra):
    return client.post(INVITATIONS, {"email": email, "role": role, **extra}, format="json")


def path_of(link: str) -> str:
    return re.sub(r"^https?://[^/]+", "", link)


def members_of(organization) -> set[str]:
    with organization_scope(organization):
        return set(Membership.objects.values_list("user__email", flat=True))


# ---------------------------------------------------------------------------------------------
# The reproduction: attaching someone without their consent
# ---------------------------------------------------------------------------------------------


def test_an_owner_can_no_longer_attach_another_tenants_user(tenant, other_tenant, api_client_for):
    victim = other_tenant.user(Role.DISPATCHER)
    owner = api_client_for(tenant.user(Role.OWNER))
    response = owner.post(
        "/api/v1/memberships/", {"email": victim.email, "role": "dispatcher"}, format="json"
    )
    assert response.status_code == 405
    assert "/api/v1/invitations/" in response.json()["detail"]  # says what replaced it
    invited = invite(owner, victim.email)
    assert invited.status_code == 201
    # Invited is not a member: the victim's API keeps working in their own organization.
    assert victim.email not in members_of(tenant.organization)
    me = api_client_for(victim).get("/api/v1/me/")
    assert (
        me.status_code == 200
        and me.json()["organization"]["slug"] == other_tenant.organization.slug
    )


def test_the_reply_is_the_same_for_existing_and_unknown_emails(
    tenant, other_tenant, api_client_for
):
    victim = other_tenant.user(Role.DISPATCHER)
    victim.first_name, victim.last_name = "Private", "Name"
    victim.save()
    owner = api_client_for(tenant.user(Role.OWNER))
    existing = invite(owner, victim.email.upper())
    unknown = invite(owner, "nobody-here@example.org")
    assert existing.status_code == unknown.status_code == 201
    a, b = existing.json(), unknown.json()
    assert set(a) == set(b)
    varying = {"id", "email", "link", "created_at", "expires_at"}
    assert {k: v for k, v in a.items() if k not in varying} == {
        k: v for k, v in b.items() if k not in varying
    }
    assert "Private" not in existing.content.decode() and "name" not in a
    assert a["email"] == victim.email.lower() and a["status"] == "pending"
    assert not User.objects.filter(email__iexact="nobody-here@example.org").exists()
    # The list shows the same too.
    rows = owner.get(INVITATIONS).json()["results"]
    assert {tuple(sorted(r)) for r in rows} == {tuple(sorted(set(a) - {"link"}))}


def test_only_owners_and_admins_invite_and_the_role_rules_hold(tenant, api_client_for):
    dispatcher = api_client_for(tenant.user(Role.DISPATCHER))
    assert invite(dispatcher, "x@example.com").status_code == 403
    admin = api_client_for(tenant.user(Role.ADMIN))
    assert invite(admin, "x@example.com", role="owner").status_code == 403
    no_carrier = invite(admin, "x@example.com", role="carrier_user")
    assert no_carrier.status_code == 400 and "carrier" in no_carrier.json()["fields"]
    ok = invite(admin, "x@example.com", role="carrier_user", carrier=tenant.carrier.pk)
    assert ok.status_code == 201 and ok.json()["carrier"] == tenant.carrier.pk
    member = invite(admin, tenant.user(Role.DISPATCHER).email)
    assert member.status_code == 400 and "email" in member.json()["fields"]


# ---------------------------------------------------------------------------------------------
# Accepting
# ---------------------------------------------------------------------------------------------


def test_an_existing_account_accepts_while_logged_in_and_lands_in_the_organization(
    tenant, other_tenant, api_client_for, client
):
    person = other_tenant.user(Role.DISPATCHER)
    owner = api_client_for(tenant.user(Role.OWNER))
    link = path_of(invite(owner, person.email, role="ops_manager").json()["link"])
    anonymous = client.get(link)
    # Not logged in: the same page whether or not an account exists (log in, or sign up).
    assert anonymous.status_code == 200 and b"Log in" in anonymous.content
    client.force_login(person)
    page = client.get(link)
    assert page.status_code == 200 and tenant.organization.name.encode() in page.content
    accepted = client.post(link)
    assert accepted.status_code == 302 and accepted["Location"] == "/"
    with organization_scope(tenant.organization):
        membership = Membership.objects.get(user=person)
    assert membership.role == Role.OPS_MANAGER
    assert client.session[SESSION_KEY] == tenant.organization.slug
    # In two organizations now: the API answers in the last one used, without failing.
    me = api_client_for(person).get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["organization"]["slug"] == "acme"
    # The link is spent.
    assert client.post(link).status_code == 410


def test_a_new_person_creates_an_account_through_the_link(tenant, api_client_for, client):
    owner = api_client_for(tenant.user(Role.OWNER))
    link = path_of(invite(owner, "New.Person@Example.com").json()["link"])
    assert client.get(link).status_code == 200
    weak = client.post(link, {"password1": "123", "password2": "123"})
    assert weak.status_code == 400 and not User.objects.filter(email="new.person@example.com")
    response = client.post(
        link,
        {"first_name": "New", "last_name": "Person", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get(email="new.person@example.com")
    assert user.get_full_name() == "New Person"
    assert "new.person@example.com" in members_of(tenant.organization)
    client.logout()
    assert client.login(username="new.person@example.com", password=PASSWORD)


def test_signing_up_with_an_email_that_has_an_account_creates_nothing(
    tenant, other_tenant, api_client_for, client
):
    person = other_tenant.user(Role.DISPATCHER)
    link = path_of(invite(api_client_for(tenant.user(Role.OWNER)), person.email).json()["link"])
    response = client.post(link, {"password1": PASSWORD + "x", "password2": PASSWORD + "x"})
    assert response.status_code == 400 and b"Log in" in response.content
    person.refresh_from_db()
    assert person.check_password(PASSWORD)  # the password was not replaced
    assert person.email not in members_of(tenant.organization)


def test_someone_else_logged_in_cannot_accept(tenant, other_tenant, api_client_for, client):
    link = path_of(
        invite(api_client_for(tenant.user(Role.OWNER)), "invitee@example.com").json()["link"]
    )
    intruder = other_tenant.user(Role.OWNER)
    client.force_login(intruder)
    response = client.post(link)
    assert response.status_code == 403
    assert intruder.email not in members_of(tenant.organization)
    with organization_scope(tenant.organization):
        assert Invitation.objects.get().status == "pending"


def _dead_link_pages(client, links):
    return [(r.status_code, r.content) for r in (client.get(link) for link in links)]


def test_expired_revoked_used_and_unknown_links_answer_the_same(tenant, api_client_for, client):
    owner = api_client_for(tenant.user(Role.OWNER))
    expired, revoked, used = (
        invite(owner, f"{name}@example.com").json() for name in ("expired", "revoked", "used")
    )
    with organization_scope(tenant.organization):
        Invitation.objects.filter(pk=expired["id"]).update(
            expires_at=timezone.now() - dt.timedelta(seconds=1)
        )
    assert owner.delete(f"{INVITATIONS}{revoked['id']}/").status_code == 204
    used_link = path_of(used["link"])
    client.post(used_link, {"password1": PASSWORD, "password2": PASSWORD})
    client.logout()
    links = [path_of(i["link"]) for i in (expired, revoked, used)]
    links.append(links[0][:-7] + "abcdef/")  # well-formed, unknown
    links.append("/accounts/invitations/garbage/")
    pages = _dead_link_pages(client, links)
    assert {status for status, _ in pages} == {410}
    # The same page for every dead link (only the per-response CSP nonce differs).
    assert len({re.sub(rb'nonce="[^"]*"', b"", content) for _, content in pages}) == 1
    assert b"no longer valid" in pages[0][1]
    statuses = {row["id"]: row["status"] for row in owner.get(INVITATIONS).json()["results"]}
    assert statuses == {expired["id"]: "expired", revoked["id"]: "revoked", used["id"]: "accepted"}


def test_inviting_again_replaces_the_pending_invitation(tenant, api_client_for, client):
    owner = api_client_for(tenant.user(Role.OWNER))
    first = invite(owner, "again@example.com").json()
    second = invite(owner, "again@example.com", role="ops_manager").json()
    assert client.get(path_of(first["link"])).status_code == 410
    assert client.get(path_of(second["link"])).status_code == 200
    with organization_scope(tenant.organization):
        assert (
            Invitation.objects.filter(
                email="again@example.com", accepted_at__isnull=True, revoked_at__isnull=True
            ).count()
            == 1
        )


def test_the_link_is_emailed_when_email_is_configured(
    tenant, api_client_for, django_capture_on_commit_callbacks
):
    owner = api_client_for(tenant.user(Role.OWNER))
    with django_capture_on_commit_callbacks(execute=True):
        link = invite(owner, "mailme@example.com").json()["link"]
    [message] = mail.outbox
    assert message.to == ["mailme@example.com"]
    assert link in message.body and tenant.organization.name in message.subject


def test_invitations_of_another_organization_are_invisible(tenant, other_tenant, api_client_for):
    theirs = invite(api_client_for(other_tenant.user(Role.OWNER)), "x@example.com").json()
    ours = api_client_for(tenant.user(Role.OWNER))
    assert ours.get(f"{INVITATIONS}{theirs['id']}/").status_code == 404
    assert ours.delete(f"{INVITATIONS}{theirs['id']}/").status_code == 404
    assert ours.get(INVITATIONS).json()["results"] == []


# ---------------------------------------------------------------------------------------------
# The default organization
# ---------------------------------------------------------------------------------------------


def test_a_person_in_several_organizations_keeps_a_default(
    tenant, other_tenant, api_client_for, client
):
    user = tenant.user(Role.DISPATCHER)
    MembershipFactory(organization=other_tenant.organization, user=user, role=Role.OPS_MANAGER)
    # No choice made yet: the organization joined first.
    me = api_client_for(user).get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["organization"]["slug"] == "acme"
    # Switching on the home page is remembered for the API and for new sessions.
    client.force_login(user)
    client.post("/accounts/organization/", {"organization": "globex"})
    with dangerously_all_organizations():
        assert Profile.objects.get(user=user).last_organization.slug == "globex"
    assert api_client_for(user).get("/api/v1/me/").json()["role"] == "ops_manager"
    # The header still chooses explicitly.
    chosen = api_client_for(user, organization_slug="acme").get("/api/v1/me/").json()
    assert chosen["role"] == "dispatcher"


def test_a_default_organization_left_behind_falls_back(tenant, other_tenant, api_client_for):
    user = tenant.user(Role.DISPATCHER)
    theirs = MembershipFactory(organization=other_tenant.organization, user=user)
    Profile.objects.update_or_create(
        user=user, defaults={"last_organization": other_tenant.organization}
    )
    with dangerously_all_organizations():
        Membership.dangerously_unscoped.filter(pk=theirs.pk).delete()
    me = api_client_for(user).get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["organization"]["slug"] == "acme"


def test_invitations_in_the_admin(tenant, client):
    client.force_login(tenant.user(Role.OWNER))
    response = client.post(
        "/admin/control_tower/invitation/add/",
        {"email": "admin-invite@example.com", "role": "dispatcher"},
        follow=True,
    )
    assert response.status_code == 200
    assert b"/accounts/invitations/cti_" in response.content  # the link, shown once
    with organization_scope(tenant.organization):
        assert Invitation.objects.get().email == "admin-invite@example.com"
    assert client.get("/admin/control_tower/invitation/").status_code == 200
    # People are no longer attached by hand in the admin.
    assert client.get("/admin/control_tower/membership/add/").status_code == 403
