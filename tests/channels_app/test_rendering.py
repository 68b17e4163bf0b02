"""Templates: checking, sandboxed rendering with limits, sanitising, and the email's tracking."""

import re
import time
import tracemalloc
from contextlib import contextmanager
from datetime import UTC, datetime
from html import unescape
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from django.urls import reverse

from channels_app import signed_links
from channels_app.models import Message, MessageTemplate
from channels_app.outbox import message_enqueue
from channels_app.rendering import (
    RenderError,
    choose_variant,
    email_finalize,
    render,
    template_data,
    template_errors,
    template_warnings,
)
from channels_app.template_versions import template_publish
from tests.factories import ContactFactory

ORG = SimpleNamespace(name="Acme", postal_address="1 Main Street\n10115 Berlin")
FACTS = {
    "id": 42,
    "email": "ana@example.com",
    "first_name": "Ana",
    "last_name": "Lima",
    "score": 340,
    "tags": ["vip"],
    "properties": {"plan": "pro", "seats": 12},
    "company": {"name": "Acme", "domain": "acme.io", "industry": "software", "properties": {"tier": "gold"}},
}


def data(**facts):
    return template_data(facts={**FACTS, **facts}, org=ORG, message={"id": 7, "channel": "email"})


def text(source, **facts):
    return render({"name": "A", "text": source}, data(**facts), channel="sms")["text"]


# --- what a template sees ----------------------------------------------------------------------


def test_fields_properties_company_and_org_render():
    source = (
        "{{ first_name }} {{ contact.last_name }} {{ properties.plan }} {{ contact.properties.seats }} "
        "{{ company.name }} {{ company.properties.tier }} {{ org.name }} {{ message.id }} {{ tags | join: ',' }}"
    )
    assert text(source) == "Ana Lima pro 12 Acme gold Acme 7 vip"


def test_default_filter_covers_missing_empty_and_null_values():
    assert text('Hi {{ first_name | default: "there" }}', first_name="") == "Hi there"
    assert text('Hi {{ first_name | default: "there" }}', first_name=None) == "Hi there"
    assert text('{{ properties.nope | default: "none" }}/{{ nothing.at.all }}/') == "none//"


def test_conditional_blocks():
    source = "{% if properties.seats > 10 %}big{% elsif properties.seats > 0 %}small{% else %}none{% endif %}"
    assert text(source) == "big"
    assert text(source, properties={"seats": 3}) == "small"
    assert text("{% unless company.name %}no company{% endunless %}", company=None) == "no company"


# --- the sandbox -------------------------------------------------------------------------------------


def test_python_internals_are_unreachable():
    # Liquid has no attribute access and the data is plain JSON, so dunder names are just
    # missing keys; the expression forms are syntax errors.
    assert text("{{ contact.__class__ }}|{{ contact['__class__'] }}|{{ __builtins__ }}|{{ contact.items }}") == "|||"
    with pytest.raises(RenderError, match=r"variants\[A\]\.text: .*line 1"):
        text('{{ "".__class__.__mro__ }}')
    with pytest.raises(RenderError, match="unexpected tag 'include'"):
        text('{% include "/etc/passwd" %}')


def test_only_plain_json_reaches_a_template():
    with pytest.raises(RenderError, match="not plain JSON"):
        render({"name": "A", "text": "{{ x }}"}, {"x": object()}, channel="sms")
    when = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    assert render({"name": "A", "text": "{{ x }}"}, {"x": when}, channel="sms") == {"text": "2026-11-29T08:00:00Z"}


X64 = "x" * 64
REPLACE_5 = '{{ "x"' + ' | replace: "", "xxxxxxxxxxxxxxxx"' * 5 + " }}"
RUNAWAY = [
    ("{% for i in (1..100000000) %}x{% endfor %}", "range size limit"),
    ("{% for i in (1..5000) %}{% for j in (1..5000) %}x{% endfor %}{% endfor %}", "loop iteration limit"),
    ("{% for i in (1..1000000000) reversed %}{{ i }}{% endfor %}", "range size limit"),
    ("{% for i in (1..1000000000) offset: 999999990 %}{{ i }}{% endfor %}", "range size limit"),
    ("{% tablerow i in (1..1000000000) %}{{ i }}{% endtablerow %}", "range size limit"),
    ("{% for i in (1..9000) %}" + X64 + "{% endfor %}", "output stream limit"),
    (
        '{% assign s = "x" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}',
        "(value size|local namespace) limit reached",
    ),
    (REPLACE_5, "value size limit reached"),
    ('{{ (1..100000000) | join: "," }}', "range size limit"),
    ('{% if (1..1000000000) contains "x" %}y{% endif %}', "range size limit"),
    (
        '{% assign s = "x" | replace: "", "' + X64 + '" %}'
        '{% for i in (1..10) %}{% assign s = s | append: s %}{% endfor %}{{ s | split: "" | sort }}',
        "sequence size limit",
    ),
    ("{% assign n = 99999 %}{% for i in (1..30) %}{% assign n = n | times: n %}{% endfor %}", "number size limit"),
]


@pytest.mark.parametrize(("source", "limit"), RUNAWAY)
def test_runaway_templates_are_cut_off_quickly_with_the_limit_named(source, limit):
    started = time.monotonic()
    with pytest.raises(RenderError, match=rf"variants\[A\]\.text: .*{limit}"):
        text(source)
    assert time.monotonic() - started < 2


def test_a_field_with_too_many_tags_is_refused_before_it_is_parsed():
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"variants\[A\]\.text: more than 2000 outputs and tags"):
        text("{{x}}" * 39_000)  # under the size limit; parsing it took 12 s and kept 23 MB
    assert time.monotonic() - started < 0.5
    assert text("{{ first_name }}" * 100).startswith("Ana")


def test_render_time_is_bounded(monkeypatch):
    monkeypatch.setattr("channels_app.rendering.RENDER_SECONDS", 0.0)
    with pytest.raises(RenderError, match="time limit reached"):
        text("{{ first_name | upcase }}")


# --- checking before publish ------------------------------------------------------------------------


def test_template_errors_name_variant_and_field():
    errors = template_errors(
        "email",
        [
            {"name": "A", "weight": 0, "subject": "{% if %}", "colour": "red"},
            {"name": "A", "weight": 50, "subject": "Hi", "html": "{{ x | nosuch }}"},
            {"name": "C", "weight": 50, "text": "only text"},
        ],
    )
    assert "variants[A].weight: must be a number greater than 0." in errors
    assert "variants[A].html: write an HTML or a text body (or both)." in errors
    assert any(e.startswith("variants[A].subject: missing expression") for e in errors)
    assert any(e.startswith("variants[A].colour: not a field of email") for e in errors)
    assert "variants[A].name: another variant has this name; names must differ." in errors
    assert "variants[A].html: unknown filter 'nosuch' at line 1, column 7." in errors
    assert "variants[C].subject: required." in errors
    assert len(errors) == 7


@pytest.mark.parametrize(
    ("channel", "variant", "expected"),
    [
        ("sms", {"name": "A", "weight": 1}, ["variants[A].text: required."]),
        ("push", {"name": "A", "weight": 1, "title": "t"}, ["variants[A].body: required."]),
        ("webhook", {"name": "A", "weight": 1}, ["variants[A].text: write a text or a payload."]),
        ("webhook", {"name": "A", "weight": 1, "payload": {"who": "{{ email }}"}}, []),
        ("slack", {"name": "A", "weight": 1, "payload": {"blocks": ["{% if %}"]}}, ["variants[A].payload.blocks[0]"]),
    ],
)
def test_required_fields_per_channel(channel, variant, expected):
    errors = template_errors(channel, [variant])
    assert len(errors) == len(expected)
    for error, start in zip(errors, expected, strict=True):
        assert error.startswith(start)


def test_long_sms_is_a_warning_not_an_error():
    variants = [{"name": "A", "weight": 1, "text": "x" * 200}]
    assert template_errors("sms", variants) == []
    assert template_warnings("sms", variants) == [
        "variants[A].text: over 160 characters before merging fields; it will be sent as several SMS segments."
    ]


def test_payload_leaves_render():
    variant = {"name": "A", "weight": 1, "payload": {"text": "Lead {{ email }}", "n": 3, "tags": ["{{ tags[0] }}"]}}
    assert render(variant, data(), channel="webhook") == {
        "payload": {"text": "Lead ana@example.com", "n": 3, "tags": ["vip"]}
    }


def test_choose_variant_is_deterministic_and_weighted():
    variants = [{"name": "A", "weight": 80}, {"name": "B", "weight": 20}]
    picks = [choose_variant(variants, contact_id=c, template_id=5)["name"] for c in range(2000)]
    assert picks == [choose_variant(variants, contact_id=c, template_id=5)["name"] for c in range(2000)]
    assert 1450 < picks.count("A") < 1750


# --- email HTML ----------------------------------------------------------------------------------------


def email(html, **extra):
    return render(
        {"name": "A", "weight": 1, "subject": "Hi {{ first_name }}", "html": html, **extra}, data(), channel="email"
    )


def test_html_is_sanitised():
    content = email(
        '<p onclick="steal()" style="color: red; background-image: url(https://evil.example/x)">Hi</p>'
        '<script>alert(1)</script><a href="javascript:alert(1)">js</a><img src="x" onerror="alert(1)">'
        '<style>p { color: red }</style><iframe src="https://evil.example"></iframe>'
    )
    html = content["html"]
    assert "script" not in html and "alert" not in html and "onclick" not in html and "onerror" not in html
    assert "javascript:" not in html and "iframe" not in html and "background-image" not in html
    assert '<p style="color: red">Hi</p>' in html or '<p style="color:red">Hi</p>' in html


def test_contact_values_are_escaped_in_html_but_not_in_text():
    content = render(
        {"name": "A", "subject": "{{ first_name }}", "html": "<p>{{ first_name }}</p>", "text": "{{ first_name }}"},
        data(first_name='<a href="https://evil.example">Ana</a>'),
        channel="email",
    )
    assert "<a" not in content["html"].replace("&lt;a", "")
    assert content["text"] == '<a href="https://evil.example">Ana</a>'


def test_preheader_is_hidden_at_the_top_of_the_html():
    content = email("<p>Body</p>", preheader="Only today, {{ first_name }} & co")
    assert content["html"].startswith('<div style="display: none; max-height: 0; overflow: hidden;">')
    assert "Only today, Ana &amp; co</div>" in content["html"]
    assert content["text"] == "Body"


def test_text_is_derived_from_html_and_subject_is_one_line():
    content = email(
        '<h1>Hello {{ first_name }}</h1><p>See <a href="https://acme.io/x">this</a>.</p>', subject="A\nBcc: x"
    )
    assert content["text"] == "Hello Ana\n\nSee this (https://acme.io/x)."
    assert content["subject"] == "A Bcc: x"


# --- email tracking -----------------------------------------------------------------------------------


def test_email_finalize_tracks_links_keeping_utm_and_adds_pixel_and_footer():
    url = "https://acme.io/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=nov&x=1"
    content = email(f'<p><a href="{url}">Pricing</a> or <a href="mailto:hi@acme.io">mail us</a></p>')

    final = email_finalize(content, message_id=7, org=ORG, purpose="marketing")

    hrefs = [unescape(h) for h in re.findall(r'href="([^"]+)"', final["html"])]
    click = hrefs[0]
    assert click.startswith(signed_links.absolute("/m/c/"))
    assert signed_links.read(signed_links.CLICK, unquote(click.rsplit("/", 1)[1])) == {"m": 7, "u": url}
    assert hrefs[1] == "mailto:hi@acme.io"
    assert signed_links.unsubscribe_url(7) in hrefs
    assert f'<img src="{signed_links.open_url(7)}" width="1" height="1" alt="">' in final["html"]
    assert "1 Main Street<br>10115 Berlin" in final["html"]
    # The text part: its link tracked too, and the same footer.
    assert url not in final["text"] and "/m/c/" in final["text"]
    assert f"Unsubscribe: {signed_links.unsubscribe_url(7)}" in final["text"]
    assert final["text"].endswith("Acme\n1 Main Street\n10115 Berlin")


def test_transactional_email_has_no_unsubscribe_footer():
    final = email_finalize(
        email('<a href="https://acme.io/r">receipt</a>'), message_id=7, org=ORG, purpose="transactional"
    )
    assert "/m/u/" not in final["html"] and "/m/u/" not in final["text"]
    assert "Main Street" not in final["html"]
    assert signed_links.open_url(7) in final["html"]


# --- memory: one render builds at most a few MB, whatever the template ----------------------------

# The audit's template (618 characters): a 150 KB capture, split into a list of one item, the list
# concatenated with itself 13 times (8,192 references to the same string) and joined with the
# big string: about 2.4 GB built in one ``join`` before any limit looked at it.
REPRO = (
    "Hi {{ first_name }}, here is your weekly digest:\n"
    "{% capture b %}{% for i in (1..2400) %}" + X64 + "{% endfor %}{% endcapture %}"
    '{% assign l = b | split: "," %}' + "{% assign l = l | concat: l %}" * 13 + "{{ l | join: b }}"
)
PEAK_BYTES = 32_000_000


@contextmanager
def traced_peak():
    """Yields a one-item list that holds, on exit, the most memory allocated at once inside."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    peak = [0]
    try:
        yield peak
    finally:
        peak[0] = tracemalloc.get_traced_memory()[1] - baseline
        if started:
            tracemalloc.stop()


def test_the_audits_template_fails_cleanly_within_the_memory_budget():
    assert len(REPRO) == 618
    started = time.monotonic()
    with traced_peak() as peak, pytest.raises(RenderError, match=r"variants\[A\]\.text: memory limit reached"):
        text(REPRO)
    assert peak[0] < PEAK_BYTES
    assert time.monotonic() - started < 2


CONCAT_7 = '{% assign l = b | split: "," %}' + "{% assign l = l | concat: l %}" * 7
MEMORY_RUNAWAY = [
    # a list of many references to one big string, printed or made text by a filter
    (CONCAT_7 + "{{ l }}", "memory limit reached"),
    (CONCAT_7 + "{{ l | upcase }}", "memory limit reached"),
    (CONCAT_7 + "{{ b | append: l }}", "memory limit reached"),
    # many big values made one after the other, each under the value and namespace limits
    ("{% for i in (1..200) %}{% capture c %}{{ b | slice: 0, 100000 }}{% endcapture %}{% endfor %}", "memory limit"),
    ("{% for i in (1..200) %}{% assign c = b | slice: 0, 100000 | append: i %}{% endfor %}", "memory limit"),
    # a cycle's key is the text of its arguments, kept for the whole render
    (
        '{% for i in (1..200) %}{% assign c = b | slice: 0, 100000 | append: i %}{% cycle "", c %}{% endfor %}',
        "memory limit",
    ),
    # a number too big for the filter's arithmetic
    ('{{ "1e999999999" | floor }}', "floor: "),
]


@pytest.mark.parametrize(("source", "limit"), MEMORY_RUNAWAY)
def test_templates_that_build_too_much_fail_within_the_memory_budget(source, limit):
    big = "{% capture b %}{% for i in (1..2400) %}" + X64 + "{% endfor %}{% endcapture %}"
    started = time.monotonic()
    with traced_peak() as peak, pytest.raises(RenderError, match=rf"variants\[A\]\.text: .*{limit}"):
        text(big + source)
    assert peak[0] < PEAK_BYTES
    assert time.monotonic() - started < 2


def test_the_budget_is_per_render_call_and_shared_by_its_fields():
    # 64 KB is allocated 100 times by each field: one field fits in the budget, four do not.
    field = (
        "{% capture b %}{% for i in (1..1000) %}"
        + X64
        + "{% endfor %}{% endcapture %}"
        + ("{% for i in (1..100) %}{% assign c = b | append: i %}{% endfor %}ok")
    )
    assert text(field) == "ok" and text(field) == "ok"
    variant = {"name": "A", "subject": field, "preheader": field, "html": field, "text": field}
    with pytest.raises(RenderError, match=r"variants\[A\]\.(html|text): memory limit reached"):
        render(variant, data(), channel="email")


# --- every path renders through the bounded ``render`` ------------------------------------------------


def repro_template(org):
    return MessageTemplate.objects.create(
        org=org,
        slug="digest",
        name="Digest",
        channel="email",
        purpose="marketing",
        variants=[{"name": "A", "weight": 1, "subject": "Digest", "text": REPRO}],
    )


def test_console_preview_shows_the_limit(org, console):
    template = repro_template(org)
    ContactFactory(org=org, email="ana@example.com", first_name="Ana")
    url = reverse("admin:channels_app_messagetemplate_preview", args=[template.pk])
    with traced_peak() as peak:
        response = console.get(url + "?contact=ana@example.com")
    assert response.status_code == 200
    assert "variants[A].text: memory limit reached" in unescape(response.content.decode())
    assert peak[0] < PEAK_BYTES


def test_api_dry_run_reports_the_limit(org, api, contact, publish):
    template = repro_template(org)
    template_publish(template=template)
    workflow = publish([{"id": "mail", "type": "action", "action": "send_email", "config": {"template": "digest"}}])
    with traced_peak() as peak:
        response = api.post(
            f"/api/v1/workflows/{workflow.pk}/dry-run/", {"contact_id": contact.pk}, content_type="application/json"
        )
    assert response.status_code == 200, response.content
    [action] = response.json()["actions"]
    assert "variants[A].text: memory limit reached" in action["preview"]["error"]
    assert peak[0] < PEAK_BYTES


def test_sending_refuses_the_template_and_writes_nothing(org, contact):
    template = repro_template(org)
    template_publish(template=template)
    template.refresh_from_db()
    with traced_peak() as peak, pytest.raises(RenderError, match=r"variants\[A\]\.text: memory limit reached"):
        message_enqueue(org=org, contact=contact, template=template, idempotency_key="digest:1")
    assert not Message.objects.exists()
    assert peak[0] < PEAK_BYTES
