"""The library's resource kinds: what a library template's send steps name besides segments
(message templates, destinations), made when an org uses the template and checked when the
workflow is published. The apps that own those models (``channels_app``) register a maker for
each kind in their ``AppConfig.ready``, so ``workflows`` never names their models
(docs/workflows.md, "Sending actions").
"""

from typing import Any, ClassVar


class LibraryResource:
    """One kind of resource. ``kind`` names it (``message_template``), ``needs_key`` is its list
    in ``library.template_needs`` and in ``library_use``'s ``created`` (``message_templates``),
    ``config_field`` the send step's config field that names it by slug (``template``)."""

    kind: ClassVar[str] = ""
    needs_key: ClassVar[str] = ""
    config_field: ClassVar[str] = ""

    def ensure(self, *, org, slug: str, spec: Any, origin: str, ready: bool) -> bool | None:
        """Makes ``slug`` in ``org`` from ``spec`` (the library's content for it, or None) unless
        it exists, marked with ``origin`` (the library template's slug); ``ready``: usable at once
        (published, active), else a draft to review. Returns whether an existing one was reused,
        or None when it neither exists nor has content (not the library's: publishing names it)."""
        raise NotImplementedError

    def publish_problems(self, *, org, slugs: set[str]) -> dict[str, str]:
        """For each of ``slugs`` that would make a send fail once live, what to do about it (e.g.
        "the message template “x” is not published; review and publish it first.")."""
        raise NotImplementedError


_resources: dict[str, LibraryResource] = {}


def library_resource_register(resource: LibraryResource) -> None:
    """Registers a maker (one per kind; registering a kind again replaces it)."""
    if not resource.kind:
        raise ValueError(f"{type(resource).__name__} has no kind")
    _resources[resource.kind] = resource


def library_resources() -> list[LibraryResource]:
    """Every registered kind, in the order registered."""
    return list(_resources.values())
