"""Fuzzing the template sandbox: filters and tags composed on big inputs either render or fail with
a ``RenderError``, within the time limit and a few tens of MB, whatever the template."""

import contextlib
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from channels_app.rendering import RENDER_SECONDS, RenderError, render, text_env
from tests.channels_app.test_rendering import PEAK_BYTES, REPRO, traced_peak

# Big inputs, as a contact's properties or an event could hold them: a long ASCII string, a wide
# one (four bytes a character, control characters that repr escapes), many short items, records.
DATA = {
    "big": "x" * 200_000,
    "wide": "\U0001f600\x01\u00e9" * 20_000,
    "items": [f"item {i}" for i in range(2_000)],
    "rows": [{"name": f"n{i}", "tags": ["a", "b"], "n": i} for i in range(500)],
    "n": 99_999,
}
VARIABLES = ["big", "wide", "items", "rows", "n", "v0", "v1", "v2"]
FILTERS = sorted(text_env.filters)
# The filters that build strings and lists, drawn four times as often as the others.
BUILDERS = ["join", "concat", "append", "prepend", "replace", "replace_first", "split", "slice", "map", "where"]
BUILDERS += ["sort", "uniq", "reverse", "compact", "times", "plus", "truncate", "escape", "url_encode"]
BUILDERS += ["base64_encode", "newline_to_br", "date", "upcase"]
# How many arguments a filter takes (least, most); one at most when not named.
ARITY = {"replace": (2, 2), "replace_first": (2, 2), "replace_last": (2, 2), "slice": (1, 2), "where": (1, 2)}
ARITY |= {"truncate": (1, 2), "truncatewords": (1, 2), "reject": (1, 2), "find": (1, 2), "has": (1, 2)}
ARITY |= {name: (1, 1) for name in ("join", "concat", "append", "prepend", "split", "map", "times", "plus", "date")}
ARGUMENTS = [
    *VARIABLES,
    '""',
    '","',
    '" "',
    '"x"',
    '"%c%A%B"',
    '"' + "y" * 500 + '"',
    "0",
    "1",
    "13",
    "-1",
    "100000",
    "99999999999999999999",
    "1e308",
    "(1..9000)",
]


@st.composite
def filtered(draw) -> str:
    """A value and a chain of up to four filters with up to two arguments each."""
    expression = draw(st.sampled_from(VARIABLES))
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(FILTERS + BUILDERS * 4))
        least, most = ARITY.get(name, (0, 1))
        args = draw(st.lists(st.sampled_from(ARGUMENTS), min_size=least, max_size=most))
        expression += f" | {name}" + (": " + ", ".join(args) if args else "")
    return expression


@st.composite
def statement(draw, depth: int = 0) -> str:
    kinds = ["assign", "seed", "double", "double", "output", "capture", "cycle", "increment", "tablerow"]
    kinds += ["for", "for"]
    kind = draw(st.sampled_from(kinds))
    target = draw(st.sampled_from(["v0", "v1", "v2"]))
    if kind == "double":  # a value made from itself twice: it grows exponentially in a loop
        name, source = draw(st.sampled_from(["concat", "append", "prepend", "join"])), draw(st.sampled_from(VARIABLES))
        return f"{{% assign {target} = {source} | {name}: {source} %}}{{% assign {source} = {target} %}}"
    if kind == "seed":  # a list of one big item, to be doubled
        return f'{{% assign {target} = {draw(st.sampled_from(["big", "wide"]))} | split: "," %}}'
    if kind == "assign":
        return f"{{% assign {target} = {draw(filtered())} %}}"
    if kind == "output":
        return f"{{{{ {draw(filtered())} }}}}"
    if kind == "capture":
        return f"{{% capture {target} %}}{{{{ {draw(filtered())} }}}}{{{{ {target} }}}}{{% endcapture %}}"
    if kind == "cycle":
        return f'{{% cycle "", {draw(st.sampled_from(VARIABLES))} %}}'
    if kind == "increment":
        return f"{{% increment {target} %}}"
    if kind == "tablerow":
        return f"{{% tablerow x in {draw(st.sampled_from(VARIABLES))} cols: 3 %}}{{{{ x }}}}{{% endtablerow %}}"
    if depth >= 2:
        return f"{{{{ {draw(filtered())} }}}}"
    loop = draw(st.sampled_from(["(1..3)", "(1..50)", "(1..2000)", "items", "rows", "big", "v0"]))
    body = "".join(draw(st.lists(statement(depth + 1), min_size=1, max_size=3)))
    return f"{{% for i in {loop}{draw(st.sampled_from(['', ' reversed', ' limit: 100']))} %}}{body}{{% endfor %}}"


@settings(
    derandomize=True,
    database=None,
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@example(source=REPRO, html=False)
@given(source=st.lists(statement(), min_size=1, max_size=6).map("".join), html=st.booleans())
def test_any_template_renders_or_fails_cleanly_within_time_and_memory(source, html):
    variant = {"name": "A", "subject": "Hi", "html" if html else "text": source}
    started = time.monotonic()
    with traced_peak() as peak, contextlib.suppress(RenderError):
        render(variant, DATA, channel="email")
    elapsed = time.monotonic() - started
    assert peak[0] < PEAK_BYTES, (peak[0], source)
    assert elapsed < RENDER_SECONDS + 1.0, (elapsed, source)
