"""A public key (write key, form) never merges two known contacts: it records a conflict that an
operator merges or dismisses in the console; a server key merges as before."""

import base64
import json

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from marketing.identity import Trust, contact_identify, identity_conflict_resolve, ref_from
from marketing.models import AnonymousId, ApiKey, Contact, ContactMerge, Event, IdentityConflict, Role
from marketing.services import api_key_create
from marketing.tenancy import org_context
from tests.factories import ContactFactory

CHANGELIST = "/admin/marketing/identityconflict/"


def segment_call(path, body, *, key):
    """A Segment call as analytics.js sends it: basic auth with the key as user name."""
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    return Client().post(path, json.dumps(body), content_type="text/plain", headers={"Authorization": auth})


def identify_twice(key):
    """The audit's reproduction: one browser (one anonymousId) identifies as two known people."""
    first = segment_call("/v1/identify", {"anonymousId": "anon-1", "traits": {"email": "ana@example.com"}}, key=key)
    second = segment_call("/v1/identify", {"anonymousId": "anon-1", "traits": {"email": "bo@example.com"}}, key=key)
    return first, second


@pytest.fixture
def two_known(org):
    """Two known contacts: Ana (older) and Bo."""
    return ContactFactory(org=org, email="ana@example.com"), ContactFactory(org=org, email="bo@example.com")


def test_write_key_identify_with_two_known_emails_keeps_both_and_records_a_conflict(org, write_key, two_known):
    ana, bo = two_known

    first, second = identify_twice(write_key)

    assert first.status_code == 200 and second.status_code == 200
    # Answered as any identify: the named contact, nothing about the other one.
    assert second.json() == {"success": True, "index": 0, "status": "identified", "contact_id": bo.pk}
    assert "ana" not in second.content.decode() and str(ana.pk) not in second.content.decode()
    assert set(Contact.objects.values_list("pk", flat=True)) == {ana.pk, bo.pk}
    assert not ContactMerge.objects.exists()
    assert AnonymousId.objects.get(value="anon-1").contact_id == ana.pk  # the browser's history stays Ana's
    conflict = IdentityConflict.objects.get()
    assert (conflict.contact, conflict.other_contact) == (bo, ana)
    assert (conflict.status, conflict.source, conflict.occurrences) == ("open", "identify", 1)
    assert conflict.identifiers == {
        "email": {"value": "bo@example.com", "contact": bo.pk},
        "anonymous_id": {"value": "anon-1", "contact": ana.pk},
    }
    assert conflict.summary == {"call": "identify", "traits": ["email"]}  # names only, no values

    # The same call again is counted on the same conflict, not recorded again.
    segment_call("/v1/identify", {"anonymousId": "anon-1", "traits": {"email": "bo@example.com"}}, key=write_key)
    conflict.refresh_from_db()
    assert IdentityConflict.objects.count() == 1 and conflict.occurrences == 2


def test_server_key_identify_with_two_known_emails_merges_as_before(org, api_key, two_known):
    ana, bo = two_known

    _, second = identify_twice(api_key)

    assert second.status_code == 200 and second.json()["contact_id"] == ana.pk  # the older is kept
    assert list(Contact.objects.values_list("pk", flat=True)) == [ana.pk]
    assert ContactMerge.objects.get().merged_contact_id == bo.pk
    assert not IdentityConflict.objects.exists()


def test_write_key_track_with_a_user_id_is_stored_on_that_contact_without_a_merge(org, write_key, two_known):
    ana, bo = two_known
    Contact.objects.filter(pk=bo.pk).update(external_id="u-bo")
    AnonymousId.objects.create(org=org, contact=ana, value="anon-1")

    response = segment_call(
        "/v1/track", {"event": "Clicked", "userId": "u-bo", "anonymousId": "anon-1", "messageId": "m-1"}, key=write_key
    )

    assert response.status_code == 200 and response.json()["contact_id"] == bo.pk
    assert Event.objects.get(message_id="m-1").contact_id == bo.pk
    assert Contact.objects.count() == 2 and not ContactMerge.objects.exists()
    conflict = IdentityConflict.objects.get()
    assert (conflict.contact, conflict.other_contact, conflict.source) == (bo, ana, "event")
    assert conflict.summary == {"call": "event", "source": "segment"}


def test_write_key_alias_between_two_known_contacts_records_a_conflict(org, write_key, two_known):
    ana, bo = two_known
    Contact.objects.filter(pk=ana.pk).update(external_id="u-ana")
    Contact.objects.filter(pk=bo.pk).update(external_id="u-bo")

    response = segment_call("/v1/alias", {"previousId": "u-ana", "userId": "u-bo"}, key=write_key)

    assert response.status_code == 200 and response.json()["contact_id"] == bo.pk
    assert Contact.objects.count() == 2 and not ContactMerge.objects.exists()
    conflict = IdentityConflict.objects.get()
    assert (conflict.contact, conflict.other_contact, conflict.source) == (bo, ana, "alias")
    assert conflict.identifiers == {
        "external_id": {"value": "u-bo", "contact": bo.pk},
        "previous_id": {"value": "u-ana", "contact": ana.pk},
    }


def test_a_public_form_naming_a_known_email_does_not_merge_the_visitors_known_contact(org, two_known):
    ana, bo = two_known
    AnonymousId.objects.create(org=org, contact=ana, value="visitor-1")
    key = api_key_create(org=org, name="site", scope=ApiKey.Scope.WRITE)[1]

    response = Client().post(
        f"/t/forms/newsletter/?k={key}",
        json.dumps({"email": "Bo@Example.com", "first_name": "Bo", "_aid": "visitor-1"}),
        content_type="application/json",
    )

    assert response.status_code == 200 and response.json() == {"ok": True, "contact_id": bo.pk}
    assert Event.objects.get(type="form_submitted").contact_id == bo.pk
    assert Contact.objects.count() == 2 and not ContactMerge.objects.exists()
    assert AnonymousId.objects.get(value="visitor-1").contact_id == ana.pk
    conflict = IdentityConflict.objects.get()
    assert (conflict.contact, conflict.other_contact, conflict.source) == (bo, ana, "form")
    assert conflict.summary == {"call": "form", "form": "newsletter", "fields": ["email", "first_name"]}


def test_a_write_key_still_attaches_an_anonymous_visitor_to_a_known_contact(org, write_key, two_known):
    ana, _ = two_known
    segment_call("/v1/page", {"anonymousId": "anon-9", "name": "Pricing", "messageId": "p-1"}, key=write_key)
    visitor = AnonymousId.objects.get(value="anon-9").contact

    response = segment_call(
        "/v1/identify", {"anonymousId": "anon-9", "traits": {"email": "ana@example.com"}}, key=write_key
    )

    assert response.json()["contact_id"] == ana.pk
    assert not Contact.objects.filter(pk=visitor.pk).exists()
    assert Event.objects.get(message_id="p-1").contact_id == ana.pk
    assert ContactMerge.objects.get().merged_contact_id == visitor.pk
    assert not IdentityConflict.objects.exists()


def test_public_trust_names_the_contact_by_user_id_over_email(org):
    by_email = ContactFactory(org=org, email="ana@example.com")
    by_user_id = ContactFactory(org=org, email=None, external_id="u-1")
    ref = ref_from(email="ana@example.com", external_id="u-1")

    assert contact_identify(org=org, ref=ref, trust=Trust.PUBLIC) == by_user_id
    assert Contact.objects.count() == 2
    conflict = IdentityConflict.objects.get()
    assert (conflict.contact, conflict.other_contact) == (by_user_id, by_email)


# --- the console --------------------------------------------------------------------------------


@pytest.fixture
def conflict(org, write_key, two_known):
    identify_twice(write_key)
    return IdentityConflict.objects.get()


def resolve(client, conflict, action):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [conflict.pk]})


def test_console_lists_conflicts_of_the_org_with_filters_and_search(org, other_org, console, conflict):
    with org_context(other_org):
        IdentityConflict.objects.create(org=other_org, source="identify", identifiers={"email": {"value": "x@globex"}})

    page = console.get(CHANGELIST).content.decode()
    assert "bo@example.com" in page and "ana@example.com" in page and "x@globex" not in page
    assert console.get(CHANGELIST).context["cl"].result_count == 1
    assert "bo@example.com" in console.get(CHANGELIST, {"q": "bo@example.com"}).content.decode()
    assert console.get(CHANGELIST, {"q": "nobody@example.com"}).context["cl"].result_count == 0
    assert console.get(CHANGELIST, {"status__exact": "dismissed"}).context["cl"].result_count == 0
    detail = console.get(reverse("admin:marketing_identityconflict_change", args=[conflict.pk])).content.decode()
    assert "identity_conflicts_merge" in detail and "identity_conflicts_dismiss" in detail


def test_console_resolves_a_conflict_by_merging_the_two_contacts(org, console, marketer, conflict, two_known):
    ana, bo = two_known

    assert resolve(console, conflict, "identity_conflicts_merge").status_code == 302

    conflict.refresh_from_db()
    assert list(Contact.objects.values_list("pk", flat=True)) == [ana.pk]  # the older is kept, as a server merge does
    merge = ContactMerge.objects.get()
    assert (merge.kept_id, merge.merged_contact_id, merge.reason) == (ana.pk, bo.pk, "identity_conflict")
    assert (conflict.status, conflict.merge, conflict.resolved_by) == ("merged", merge, marketer)
    assert conflict.resolved_at is not None
    with pytest.raises(ValidationError, match="already merged"):
        identity_conflict_resolve(conflict=conflict, action="dismiss", by=marketer)


def test_console_dismisses_a_conflict(org, member_factory, write_key, conflict):
    admin_user = member_factory(org, Role.ADMIN)
    client = Client()
    client.force_login(admin_user)

    assert resolve(client, conflict, "identity_conflicts_dismiss").status_code == 302

    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolved_by) == ("dismissed", admin_user)
    assert Contact.objects.count() == 2 and not ContactMerge.objects.exists()
    # A dismissed pair stays dismissed: the same call again is counted, not reopened.
    identify_twice(write_key)
    conflict.refresh_from_db()
    assert IdentityConflict.objects.count() == 1 and conflict.status == "dismissed" and conflict.occurrences == 2


def test_an_analyst_sees_conflicts_but_may_not_resolve_them(org, member_factory, conflict):
    analyst = Client()
    analyst.force_login(member_factory(org, Role.ANALYST))

    listing = analyst.get(CHANGELIST)
    assert listing.status_code == 200 and "bo@example.com" in listing.content.decode()
    assert "identity_conflicts_merge" not in listing.content.decode()
    detail = analyst.get(reverse("admin:marketing_identityconflict_change", args=[conflict.pk]))
    assert detail.status_code == 200 and "identity_conflicts_merge" not in detail.content.decode()
    resolve(analyst, conflict, "identity_conflicts_merge")
    resolve(analyst, conflict, "identity_conflicts_dismiss")
    assert analyst.post(reverse("admin:marketing_identityconflict_change", args=[conflict.pk]), {}).status_code == 403

    conflict.refresh_from_db()
    assert conflict.status == "open" and Contact.objects.count() == 2


def test_merging_a_conflict_whose_contact_is_gone_is_refused_by_name(org, marketer, conflict, two_known):
    _, bo = two_known
    bo.delete()
    conflict.refresh_from_db()

    with pytest.raises(ValidationError, match="no longer exists"):
        identity_conflict_resolve(conflict=conflict, action="merge", by=marketer)
    conflict.refresh_from_db()
    assert conflict.status == "open"


def test_a_server_merge_settles_the_pairs_open_conflict_and_carries_the_others(org, write_key, two_known):
    ana, bo = two_known
    cy = ContactFactory(org=org, email="cy@example.com")
    AnonymousId.objects.create(org=org, contact=bo, value="anon-bo")
    identify_twice(write_key)  # Bo named from Ana's browser
    segment_call("/v1/identify", {"anonymousId": "anon-bo", "traits": {"email": "cy@example.com"}}, key=write_key)
    pair, with_cy = IdentityConflict.objects.order_by("pk")
    assert (with_cy.contact, with_cy.other_contact) == (cy, bo)

    kept = contact_identify(org=org, ref=ref_from(email="bo@example.com", anonymous_id="anon-1"), trust=Trust.SERVER)

    assert kept == ana  # the older
    pair.refresh_from_db()
    with_cy.refresh_from_db()
    assert (pair.status, pair.merge, pair.resolved_by) == ("merged", kept.merges.get(), None)
    assert (with_cy.contact, with_cy.other_contact, with_cy.status) == (cy, ana, "open")  # Bo's conflict is Ana's now
