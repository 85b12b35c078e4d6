"""MkDocs hooks: pages made from the code and the bench at build time.

The settings table comes from ``core.settings.Settings`` (each field carries
its variable, default and meaning), so the page cannot drift from the code;
the latest bench report is published as it is, never copied into docs/.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Replaced by the table of every setting.
SETTINGS_MARKER = "<!-- settings-table -->"
#: ``make bench``'s report, published as this page (with its chart).
BENCH = ROOT / "bench" / "results"
BENCH_PAGES = {
    "performance/latest.md": "latest.md",
    "performance/latest.png": "latest.png",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(value) -> str:
    if value is None:
        return "unset"
    if value == "":
        return "empty"
    return f"`{value}`"


def settings_table() -> str:
    """A Markdown table of every setting: variable, default, meaning."""
    if str(ROOT) not in sys.path:  # the mkdocs script does not put the cwd there
        sys.path.insert(0, str(ROOT))
    from core.settings import Settings

    rows = [
        f"| `{env}` | {_default(default)} | {_cell(doc)} |"
        for env, _value, default, doc in Settings().describe()
    ]
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *rows])


def on_files(files, config):
    from mkdocs.structure.files import File  # here: the tests import this file

    for uri, name in BENCH_PAGES.items():
        source = BENCH / name
        if source.is_file():
            files.append(File.generated(config, uri, abs_src_path=str(source)))
    return files


def on_page_markdown(markdown, page, config, files):
    if SETTINGS_MARKER in markdown:
        markdown = markdown.replace(SETTINGS_MARKER, settings_table())
    return markdown
