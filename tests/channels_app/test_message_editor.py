"""The message template page's variant editor in chromium: cards instead of JSON, the code editor,
the live preview beside it, weights, and problems shown on the field they concern."""

import json
import tempfile
from pathlib import Path

from channels_app.models import MessageTemplate
from marketing.models import Role
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login, page_width, playwright_or_skip
from tests.factories import ContactFactory

SCREENSHOTS = Path(tempfile.gettempdir()) / "message_editor"


def card(page, name):
    return page.locator(f".message-variant[data-variant='{name}']")


def frame_has(page, name, text):
    """Waits until variant ``name``'s HTML preview holds ``text``."""
    page.wait_for_function(
        """([name, text]) => {
            const frame = document.querySelector(`.message-variant[data-variant='${name}'] iframe`);
            return frame && frame.getAttribute("srcdoc").includes(text);
        }""",
        arg=[name, text],
    )


def replace_code(page, editor, text):
    """Replaces a code editor's text as typing would (insert_text: no auto-closed tags)."""
    editor.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def test_a_marketer_edits_variants_with_forms_and_sees_the_preview(org, live_server, member_factory):
    sync_playwright = playwright_or_skip()
    SCREENSHOTS.mkdir(exist_ok=True)
    member_factory(org, Role.MARKETER, username="mara")
    ContactFactory(org=org, email="ana@example.com", first_name="Ana")
    template = MessageTemplate.objects.create(
        org=org,
        slug="welcome",
        name="Welcome",
        channel="email",
        variants=[{"name": "A", "weight": 100, "subject": "Hello", "html": "<p>Hi {{ first_name }}</p>"}],
    )
    url = f"/admin/channels_app/messagetemplate/{template.pk}/change/"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(60_000)  # previews come from the live server, on a busy machine
            login(page, live_server.url, "mara", next_url=url)
            frame_has(page, "A", "Hi Ana")  # the saved variant, rendered for the org's contact
            json_box_hidden = not page.is_visible("#id_variants")

            # The JSON under "Advanced" round-trips: an edit there shows in the card.
            page.click("summary:has-text('Advanced')")
            edited = json.loads(page.input_value("#id_variants"))
            edited[0]["preheader"] = "From the JSON"
            page.fill("#id_variants", json.dumps(edited))
            preheader_from_json = card(page, "A").get_by_label("Preheader").input_value()
            card(page, "A").get_by_label("Preheader").fill("")

            # Variant A: the subject in its field, the HTML in the code editor; the preview follows.
            card(page, "A").get_by_label("Subject").fill("Welcome {{ first_name }}")
            replace_code(page, card(page, "A").locator(".message-field-html"), "<h1>Hello {{ first_name }}</h1>")
            frame_has(page, "A", "<h1>Hello Ana</h1>")
            page.wait_for_function(
                "() => document.querySelector(\".message-variant[data-variant='A'] .message-preview-subject\")"
                "?.textContent.includes('Welcome Ana')"
            )

            # Variant B starts as a copy of A; 50/50.
            page.get_by_role("button", name="Add variant").click()
            card(page, "A").get_by_label("Weight").fill("50")
            card(page, "B").get_by_label("Weight").fill("50")
            shares = [card(page, n).locator(".message-field-weight .help").inner_text() for n in ("A", "B")]
            replace_code(page, card(page, "B").locator(".message-field-html"), "<p>B for {{ first_name }}</p>")
            frame_has(page, "B", "B for Ana")
            page.screenshot(path=SCREENSHOTS / "editor_1366.png", full_page=True)
            card(page, "A").screenshot(path=SCREENSHOTS / "variant_a_1366.png")
            scroll_width = page_width(page)
            a_box = card(page, "A").locator(".message-variant-fields").bounding_box()
            preview_box = card(page, "A").locator(".message-variant-preview").bounding_box()

            # A bad Liquid tag on line 2 of B's HTML: the preview says so on that field, with the line.
            replace_code(page, card(page, "B").locator(".message-field-html"), "<p>B</p>\n{% if %}")
            b_html = card(page, "B").locator(".message-field-html")
            b_html.locator(".errorlist").wait_for()
            live_error = b_html.locator(".errorlist").inner_text()
            marked_line = b_html.locator(".cm-problem-line").inner_text()
            page.screenshot(path=SCREENSHOTS / "liquid_error_1366.png", full_page=True)

            # Saved anyway: the server refuses it, and says so on B's HTML field again.
            with page.expect_navigation():
                page.click("[name=_save]")
            card(page, "B").locator(".message-field-html .errorlist").wait_for()
            server_error = card(page, "B").locator(".message-field-html .errorlist").inner_text()
            a_errors = card(page, "A").locator(".errorlist").count()
            page.screenshot(path=SCREENSHOTS / "server_error_1366.png", full_page=True)

            replace_code(page, card(page, "B").locator(".message-field-html"), "<p>B for {{ first_name }}</p>")
            frame_has(page, "B", "B for Ana")
            with page.expect_navigation():
                page.click("[name=_save]")
            saved_message = page.inner_text("#main")
        finally:
            browser.close()

    assert json_box_hidden  # the JSON is under "Advanced", closed
    assert preheader_from_json == "From the JSON"
    assert shares == ["50% of sends", "50% of sends"]
    assert scroll_width <= 1366
    assert preview_box["x"] >= a_box["x"] + a_box["width"]  # side by side
    assert "line 2" in live_error and "if" in marked_line
    assert "line 2" in server_error and a_errors == 0
    assert "was changed successfully" in saved_message
    template.refresh_from_db()
    assert template.variants == [
        {"name": "A", "weight": 50, "subject": "Welcome {{ first_name }}", "html": "<h1>Hello {{ first_name }}</h1>"},
        {"name": "B", "weight": 50, "subject": "Welcome {{ first_name }}", "html": "<p>B for {{ first_name }}</p>"},
    ], json.dumps(template.variants)


def test_a_new_sms_template_shows_the_fields_of_its_channel(org, live_server, member_factory):
    sync_playwright = playwright_or_skip()
    SCREENSHOTS.mkdir(exist_ok=True)
    member_factory(org, Role.MARKETER, username="mara")
    ContactFactory(org=org, first_name="Ana")
    url = "/admin/channels_app/messagetemplate/add/"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(60_000)  # previews come from the live server, on a busy machine
            login(page, live_server.url, "mara", next_url=url)
            page.fill("#id_slug", "reminder")
            page.fill("#id_name", "Reminder")
            page.select_option("#id_channel", "sms")
            labels = card(page, "A").locator(".message-variant-fields label").all_inner_texts()
            replace_code(page, card(page, "A").locator(".message-field-text"), "Hi {{ first_name }}, see you at 10.")
            page.wait_for_function(
                "() => document.querySelector(\".message-variant[data-variant='A'] .message-preview-text\")"
                "?.textContent === 'Hi Ana, see you at 10.'"
            )
            # A weight of 0 is refused on the weight field before the page is even sent.
            card(page, "A").get_by_label("Weight").fill("0")
            weight_error = card(page, "A").locator(".message-field-weight .errorlist").inner_text()
            card(page, "A").get_by_label("Weight").fill("100")
            page.screenshot(path=SCREENSHOTS / "sms_1366.png", full_page=True)
            scroll_width = page_width(page)
            with page.expect_navigation():
                page.click("[name=_save]")
        finally:
            browser.close()

    assert labels == ["Message text"]
    assert "greater than 0" in weight_error
    assert scroll_width <= 1366
    template = MessageTemplate.objects.get(slug="reminder")
    assert template.channel == "sms"
    assert template.variants == [{"name": "A", "weight": 100, "text": "Hi {{ first_name }}, see you at 10."}]
