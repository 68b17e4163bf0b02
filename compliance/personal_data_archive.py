"""The archive a person gets for an access or portability request: one ZIP of everything held.

Per personal-data source, ``<source>.json`` (its rows as they are, nested values kept) and
``<source>.csv`` (the same rows for a spreadsheet: one column per key, nested values as JSON
text, formula starts quoted), and a ``README.txt`` saying what each file holds.
"""

import io
import json
import os
import zipfile
from typing import IO

from marketing.csv_export import csv_write

README_HEAD = """Your personal data, exported {exported_at}

This archive holds everything {org} keeps about you, one pair of files per kind of data:
the .json file has the records as they are stored (readable by any program), the .csv file
the same records as a table (for a spreadsheet; values that are lists or objects are written
as JSON text). A kind with nothing about you has empty files.

Files:
"""


def personal_data_archive_write(*, export: dict, out: str | os.PathLike | IO[bytes]) -> list[str]:
    """Writes ``export`` (from ``compliance.erasure.contact_export``) as a ZIP to a path or a
    binary file; returns the names of the files in it."""
    names = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        readme = [README_HEAD.format(exported_at=export["exported_at"], org=export["org"])]
        for name, source in export["sources"].items():
            rows = source["rows"]
            archive.writestr(f"{name}.json", json.dumps(rows, indent=2, ensure_ascii=False))
            archive.writestr(f"{name}.csv", _csv_text(rows))
            names += [f"{name}.json", f"{name}.csv"]
            count = f"{len(rows)} record{'s' if len(rows) != 1 else ''}"
            readme.append(f"  {name}.json, {name}.csv ({count}): {source['description']}\n")
        archive.writestr("README.txt", "".join(readme))
        names.append("README.txt")
    return names


def _csv_text(rows: list[dict]) -> str:
    header: list[str] = []
    for row in rows:
        header += [key for key in row if key not in header]
    out = io.StringIO()
    csv_write(out, header=header, rows=([_cell(row.get(key)) for key in header] for row in rows))
    return out.getvalue()


def _cell(value):
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
