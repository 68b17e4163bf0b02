"""The personal-data registry covers every model that points at a contact."""

from django.apps import apps

from marketing.models import Contact
from marketing.personal_data import covered_models, personal_data_sources


def _points_at_contact(model) -> bool:
    """A foreign key, one-to-one or many-to-many field of the model's own (not a reverse one) to Contact,
    or a through table of such a many-to-many."""
    return any(
        field.is_relation and field.concrete and field.related_model is Contact for field in model._meta.get_fields()
    )


def test_every_model_pointing_at_a_contact_has_a_source():
    covered = covered_models()
    missing = [
        model._meta.label
        for model in apps.get_models(include_auto_created=True)
        if model is not Contact and _points_at_contact(model) and model._meta.label not in covered
    ]
    assert not missing, (
        f"{', '.join(missing)} point(s) at marketing.Contact but no personal-data source covers them: "
        "register one with @personal_data_source in the owning app's personal_data.py "
        "(imported from its AppConfig.ready), listing the model in the source's `models` "
        "(see docs/personal-data.md)."
    )


def test_the_contact_itself_and_the_many_to_many_table_are_covered():
    covered = covered_models()
    assert "marketing.Contact" in covered
    assert Contact.tags.through._meta.label in covered


def test_sources_are_named_once_and_the_contact_row_goes_last():
    sources = personal_data_sources()
    names = [source.name for source in sources]
    assert len(names) == len(set(names))
    assert sources[-1].name == "contact"
    assert all(source.description for source in sources), [s.name for s in sources if not s.description]


def test_the_covered_labels_name_real_models():
    for label in covered_models():
        assert apps.get_model(label)
