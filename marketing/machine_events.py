"""The event types of opens and clicks no person made: mail security scanners, link checkers,
prefetchers and Apple Mail Privacy Protection's proxy fetch the open pixel and follow links before
(or without) the person reading the email.

They are stored as types of their own, beside the person's ``email_opened`` / ``email_clicked``,
so that nothing counts them unless it names them: a scoring rule, an ``event_count`` condition, a
segment, a trigger or a ``wait_for_event`` step on ``email_clicked`` sees the person's click only.
Predictive features leave them out entirely. The timeline shows them, dimmed.
"""

# The person's type → the machine's type.
MACHINE_TYPES = {"email_opened": "email_opened_machine", "email_clicked": "email_clicked_machine"}
MACHINE_EVENT_TYPES = frozenset(MACHINE_TYPES.values())
