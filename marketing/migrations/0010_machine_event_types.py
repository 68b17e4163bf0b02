# Machine opens and clicks become their own event types: email_opened_machine, email_clicked_machine
#
# Until now a machine's open or click (a mail scanner, Apple Mail Privacy Protection's proxy) was
# stored as email_opened / email_clicked with properties.machine_open / machine_click true, which
# every rule, condition and wait had to know to leave out. Set-based: one UPDATE per type. The
# flag is left in the properties (harmless), so going back only renames the type, and sets the
# flag on machine events recorded since.

from django.db import migrations

# (the person's type, the machine's type, the flag the person's type carried)
SPLITS = (
    ("email_opened", "email_opened_machine", "machine_open"),
    ("email_clicked", "email_clicked_machine", "machine_click"),
)


def machine_events_split(apps, schema_editor):
    """email_opened/email_clicked flagged as a machine's → their machine types."""
    Event = apps.get_model("marketing", "Event")
    for human, machine, flag in SPLITS:
        Event.objects.filter(type=human, **{f"properties__{flag}": True}).update(type=machine)


def machine_events_merge(apps, schema_editor):
    """The machine types → email_opened/email_clicked with their flag set, as before."""
    Event = apps.get_model("marketing", "Event")
    table = Event._meta.db_table
    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        for human, machine, flag in SPLITS:
            if vendor == "postgresql":
                flagged = "properties || jsonb_build_object(%s::text, true)"
                params = [f"{flag}"]
            else:  # SQLite: JSON is text
                flagged = "json_set(properties, %s, json('true'))"
                params = [f"$.{flag}"]
            cursor.execute(
                f"UPDATE {table} SET type = %s, properties = {flagged} WHERE type = %s",  # noqa: S608  fixed names
                [human, *params, machine],
            )


class Migration(migrations.Migration):
    dependencies = [("marketing", "0009_identity_conflicts")]

    operations = [migrations.RunPython(machine_events_split, machine_events_merge, elidable=True)]
