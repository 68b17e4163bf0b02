"""Workflows' personal data about a contact: its runs, their steps' inputs and outputs, the
calls made for it, approvals about it, and the finished-run records."""

from django.db.models import QuerySet

from marketing.models import Contact
from marketing.personal_data import ContactRowsSource, PersonalDataSource, personal_data_source, plain_rows


@personal_data_source
class WorkflowInstances(ContactRowsSource):
    """The contact's workflow runs, with their variables and trigger data. Erased after what points at them."""

    name = "workflow_instances"
    description = "The contact's workflow runs: status, current step, variables, the data that triggered them."
    model = "workflows.WorkflowInstance"
    order = 5


@personal_data_source
class StepRuns(ContactRowsSource):
    """Each step of the contact's runs, with its input and output."""

    name = "step_runs"
    description = "Each step of the contact's workflow runs, with what it read and what it produced."
    model = "workflows.WorkflowStepRun"
    lookup = "instance__contact"


@personal_data_source
class Approvals(ContactRowsSource):
    """Approvals asked for the contact's runs, and the notes they were decided with."""

    name = "approvals"
    description = "Approvals asked for in the contact's workflow runs, and their decision notes."
    model = "workflows.Approval"
    lookup = "instance__contact"


@personal_data_source
class Deliveries(ContactRowsSource):
    """Outgoing calls (webhooks) made for the contact's runs, with the request and response kept."""

    name = "deliveries"
    description = "Outgoing calls (webhooks) made from the contact's workflow runs: request and response."
    model = "workflows.Delivery"
    lookup = "instance__contact"
    order = -5  # before the runs: a run's deletion would only unlink them


@personal_data_source
class AutomationExecutions(PersonalDataSource):
    """Finished-run records. Erasure keeps them for the workflows' figures, without the contact or the error text."""

    name = "automation_executions"
    description = "A record of each finished workflow run (status, result, duration); kept, unlinked, after an erasure."
    models = ("workflows.AutomationExecution",)
    order = -5

    def queryset(self, contact: Contact) -> QuerySet:
        from workflows.models import AutomationExecution

        return AutomationExecution._base_manager.filter(contact=contact)

    def export(self, contact: Contact) -> list[dict]:
        return plain_rows(self.queryset(contact).order_by("pk"))

    def erase(self, contact: Contact) -> None:
        self.queryset(contact).update(contact=None, instance=None, error="")
