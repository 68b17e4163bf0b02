"""Scoring's personal data about a contact: its scores and predictions, the ledger, its handoffs."""

from marketing.models import Contact
from marketing.personal_data import ContactRowsSource, personal_data_source


@personal_data_source
class Scores(ContactRowsSource):
    """The contact's score in each model, its band, and the predicted conversion probability with its factors."""

    name = "scores"
    description = "The contact's score per scoring model, its band, and the predicted conversion probability."
    model = "scoring.ContactScore"


@personal_data_source
class ScoreLedger(ContactRowsSource):
    """Every change of the contact's scores and why."""

    name = "score_ledger"
    description = "Every change of the contact's scores, and why."
    model = "scoring.ScoreLedger"


@personal_data_source
class Handoffs(ContactRowsSource):
    """The contact's handoffs to sales: who, when, accepted or rejected and why."""

    name = "handoffs"
    description = "The contact's handoffs to sales: assignee, status, rejection reason."
    model = "scoring.Handoff"

    def cache_keys(self, contact: Contact) -> list[str]:
        # The overdue alert's "sent once" marker (scoring.handoffs), per handoff.
        return [f"handoff-overdue-{pk}" for pk in self.queryset(contact).values_list("pk", flat=True)]
