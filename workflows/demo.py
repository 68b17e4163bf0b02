"""Demo data of workflows (part of ``seed_demo``, found by ``marketing.demo``'s autodiscovery).

Installs the template library for the demo org, with every message template (published),
destination (active, logging its messages) and segment the templates name, so each one can be used
and published as it is; and two live workflows that use only actions
shipped today, with a few demo contacts enrolled, so the console shows runs waiting, done and
moving. Idempotent: workflows are keyed by slug, and contacts are enrolled only when their
workflow is first made.
"""

from marketing.demo import demo_seeder

DEMO_FOLLOW_UP = {
    "trigger": {"type": "event", "event": "demo_requested"},
    "settings": {"reenrollment": "after_exit"},
    "steps": [
        {
            "id": "size",
            "type": "condition",
            "name": "A company of 100 or more?",
            "condition": {">=": [{"var": "company.size"}, 100]},
            "true_next": "enterprise",
            "false_next": "smb",
        },
        {
            "id": "enterprise",
            "type": "action",
            "name": "Tag enterprise",
            "action": "add_tag",
            "config": {"tags": ["demo-enterprise"]},
            "next": "wait",
        },
        {
            "id": "smb",
            "type": "action",
            "name": "Tag small business",
            "action": "add_tag",
            "config": {"tags": ["demo-smb"]},
            "next": "wait",
        },
        {"id": "wait", "type": "delay", "name": "Give sales a day", "config": {"duration": "P1D"}, "next": "notify"},
        {
            "id": "notify",
            "type": "action",
            "name": "Remind the team",
            "action": "notify",
            "config": {"message": "A demo request from yesterday needs a follow-up."},
            "next": None,
        },
    ],
}

WELCOME_TAGGING = {
    "trigger": {"type": "manual"},
    "settings": {"reenrollment": "never"},
    "steps": [
        {
            "id": "tag",
            "type": "action",
            "name": "Tag as welcomed",
            "action": "add_tag",
            "config": {"tags": ["welcomed"]},
            "next": "first_touch",
        },
        {
            "id": "first_touch",
            "type": "action",
            "action": "set_variable",
            "config": {"name": "first_touch", "value_from": "created_at"},
            "next": "log",
        },
        {
            "id": "log",
            "type": "action",
            "action": "log",
            "config": {"message": "Welcomed a demo contact."},
            "next": None,
        },
    ],
}

DEMO_WORKFLOWS = [
    ("demo-request-follow-up", "Demo request follow-up", "Tags demo requests by company size, then reminds the team a "
     "day later.", DEMO_FOLLOW_UP, slice(0, 12)),
    ("welcome-tagging", "Welcome tagging", "Tags new contacts and notes when they first came.", WELCOME_TAGGING,
     slice(12, 20)),
]  # fmt: skip


@demo_seeder
def demo_workflows(*, org, users, stdout) -> None:
    """The template library, and two published demo workflows with a few contacts enrolled."""
    from marketing.models import Contact
    from workflows.library import library_install
    from workflows.models import Workflow
    from workflows.services import library_content_install, workflow_create, workflow_enrol_manually, workflow_publish

    installed = library_install(org=org)
    content = library_content_install(org=org)
    new = sum(not row["reused"] for rows in content.values() for row in rows)
    contacts = list(Contact.objects.filter(org=org, email__isnull=False).order_by("pk").values_list("pk", flat=True))
    made = []
    for slug, name, description, definition, who in DEMO_WORKFLOWS:
        if Workflow.objects.filter(org=org, slug=slug).exists():
            continue
        workflow = workflow_create(
            org=org, name=name, slug=slug, description=description, definition=definition, by=users.get("marketer")
        )
        workflow_publish(workflow=workflow, by=users.get("marketer"))
        workflow.refresh_from_db()
        enrolled = workflow_enrol_manually(workflow=workflow, contact_ids=contacts[who], by=users.get("marketer"))
        made.append(f"{slug} ({enrolled} enrolled)")
    stdout.write(
        f"Demo workflows: {installed} templates added or updated, {new} message templates, destinations and "
        "segments for them; " + (f"made {', '.join(made)}." if made else "workflows already there.")
    )
