"""Query strings from outside: a NUL character in a parameter is a 400 naming it, for every route.

PostgreSQL's ``text`` cannot hold a NUL (``\\u0000``), and psycopg refuses to send one, so a
``?search=%00`` (or a filter, an ordering, the pixel's ``aid``) reached the database as an
exception: a 500. No parameter has a use for one, so they are refused at the door, before any
view, filter or lookup sees them. (Bodies are checked where they are parsed: ``json_input``.)
"""

from django.http import HttpRequest, HttpResponse, JsonResponse

NUL = "\x00"


def query_problem(request: HttpRequest) -> str | None:
    """A sentence naming the first query parameter with a NUL character in its name or value, or None."""
    for name, values in request.GET.lists():
        if NUL in name:
            shown = name.replace(NUL, "\\u0000")
            return f"The query parameter name “{shown}” contains a NUL character (\\u0000), which is not allowed."
        if any(NUL in value for value in values):
            return f"The query parameter “{name}” contains a NUL character (\\u0000), which is not allowed."
    return None


class QueryInputMiddleware:
    """Answers 400 ``{"detail": …}`` to a request whose query string holds a NUL character."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = query_problem(request)
        if problem is not None:
            return JsonResponse({"detail": problem}, status=400)
        return self.get_response(request)
