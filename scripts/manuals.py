"""Realistic long documents with natural queries, fetched by Debian package name: the Linux man pages
(``manpages``, ``manpages-dev``), the Python 3.11 manual (``python3.11-doc``) and the PostgreSQL 15 manual
(``postgresql-doc-15``).

``fetch_manuals(DIR)`` writes, per source, ``DIR/SOURCE.jsonl`` (one page per line: ``id``, ``title``,
``text``) and ``DIR/SOURCE-queries.jsonl`` (``{"query", "document"}``): a man page's NAME line without the
command's name ("list directory contents"), an HTML page's title. Sources are kept apart, so that one can be
held out of every training and tuning step. A page's text leaves out the line its query comes from (the NAME
paragraph, the heading that repeats the title), so that a query is never found verbatim. Pages shorter than ``MIN_WORDS`` words are left out (indexes,
stubs). Idempotent: a source already written is not fetched again.

Run: python scripts/manuals.py [DIR]   (default .cache/manuals)
"""

from __future__ import annotations

import gzip
import html
import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

SOURCES = {
    "manpages": (("manpages", "manpages-dev"), "usr/share/man"),
    "python": (("python3.11-doc",), "usr/share/doc/python3.11/html"),
    "postgresql": (("postgresql-doc-15",), "usr/share/doc/postgresql-doc-15/html"),
}
MIN_WORDS = 150
_FONT = re.compile(r"\\f(\[[^\]]*\]|\(..|.)")
_ESCAPES = {r"\-": "-", r"\(aq": "'", r"\(dq": '"', r"\(em": "—", r"\(en": "–", r"\(bu": "•", r"\e": "\\",
            r"\&": "", r"\ ": " ", r"\~": " ", r"\|": "", r"\^": "", r"\(rs": "\\", r"\(lq": "“", r"\(rq": "”"}  # fmt: skip
#: "Chapter 5. ", "F.1. ", "Appendix L. ", "Part III. ", "9.4.2. ": a manual's numbering, not the page's subject.
_NUMBERING = re.compile(r"^(?:(?:Chapter|Appendix|Part)\s+)?[A-Z0-9]+(?:\.[0-9]+)*\.\s+")
_NAMED = re.compile(r"\\\[([^\]]*)\]")
_GLYPHS = {
    "bu": "•",
    "aq": "'",
    "dq": '"',
    "em": "—",
    "en": "–",
    "rs": "\\",
    "lq": "“",
    "rq": "”",
    "ti": "~",
    "ha": "^",
}
_SKIPPED_TAGS = {"script", "style", "nav", "header", "footer"}
_SKIPPED_CLASSES = {"related", "sphinxsidebar", "navheader", "navfooter", "footer", "breadcrumb"}


#: Macros that start a new paragraph, and macros whose arguments are words of the current one.
_BREAKS = {"PP", "LP", "P", "TP", "IP", "HP", "RS", "RE", "br", "sp", "EX", "EE", "nf", "fi", "TQ"}
_WORDS = {"B", "I", "BR", "IR", "RB", "RI", "BI", "IB", "SM", "SB", "UR", "MT", "IP", "TP"}


def roff_to_text(source: str) -> tuple[str, str]:
    """A man page's text (paragraphs of words: macros dropped, their words kept, fonts and escapes resolved)
    and its NAME line."""
    paragraphs: list[list[str]] = [[]]
    name, in_name = "", False

    def new_paragraph() -> None:
        if paragraphs[-1]:
            paragraphs.append([])

    for raw in source.splitlines():
        if raw.startswith(('.\\"', "'\\\"")) or raw.strip() in (".", ""):
            continue
        if raw.startswith((".", "'")):
            macro, _, rest = raw[1:].strip().partition(" ")
            if macro in ("SH", "SS"):
                heading = _plain(rest).strip('"')
                in_name = heading.upper() == "NAME"
                new_paragraph()
                paragraphs[-1].append(heading)
                new_paragraph()
            elif macro in _BREAKS:
                new_paragraph()
            if macro in _WORDS:
                words = re.findall(r'"[^"]*"|\S+', rest)
                joined = "".join if macro[1:2] and macro not in ("SM", "SB", "UR", "MT") else " ".join
                text = _plain(joined(w.strip('"') for w in words))
                if text:
                    paragraphs[-1].append(text)
                    if in_name:
                        name = f"{name} {text}".strip()
            continue
        text = _plain(raw).strip()
        paragraphs[-1].append(text)
        if in_name:
            name = f"{name} {text}".strip()
    return "\n\n".join(" ".join(p) for p in paragraphs if p) + "\n", name


def _plain(text: str) -> str:
    text = _FONT.sub("", text)
    for escape, value in _ESCAPES.items():
        text = text.replace(escape, value)
    return _NAMED.sub(lambda m: _GLYPHS.get(m.group(1), ""), text)


def name_query(name_line: str) -> str:
    """``ls, dir - list directory contents`` → ``list directory contents`` (what the page is for)."""
    _, dash, what = name_line.partition(" - ")
    return (what if dash else name_line).strip()


class _Text(HTMLParser):
    """An HTML page's title and its readable text (paragraph breaks kept; scripts, styles, navigation and
    sidebars dropped with everything inside them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skipping: tuple[str, int] | None = None  # the skipped element's tag, and how deep inside it we are
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if self._skipping is not None:
            if tag == self._skipping[0]:
                self._skipping = (tag, self._skipping[1] + 1)
            return
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        if tag in _SKIPPED_TAGS or attributes.get("role") == "navigation" or classes & _SKIPPED_CLASSES:
            self._skipping = (tag, 1)
            return
        if tag == "title":
            self._in_title = True
        if tag in ("p", "div", "br", "li", "h1", "h2", "h3", "h4", "pre", "tr", "dt", "dd"):
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if self._skipping is not None:
            if tag == self._skipping[0]:
                depth = self._skipping[1] - 1
                self._skipping = (tag, depth) if depth else None
            return
        if tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif self._skipping is None:
            self.parts.append(data)


def html_to_text(source: str) -> tuple[str, str]:
    """An HTML page's readable text and its title (the site's name after a dash or a pipe dropped)."""
    parser = _Text()
    parser.feed(source)
    text = re.sub(r"[ \t]+", " ", "".join(parser.parts).replace("¶", ""))
    text = re.sub(r"\s*\n\s*", "\n", text).strip()
    title = re.split(r" — Python| \| PostgreSQL|: PostgreSQL", html.unescape(parser.title).strip())[0].strip()
    title = _NUMBERING.sub("", title.replace("¶", "")).strip()
    return text + "\n", title


def _pages(root: Path, source: str) -> list[dict]:
    pages = []
    if source == "manpages":
        for path in sorted(root.glob("man*/*.gz")):
            if path.is_symlink():
                continue  # another name of a page read under its own
            text, name = roff_to_text(gzip.decompress(path.read_bytes()).decode("utf-8", "replace"))
            if name:
                text = text.replace(f"NAME\n\n{name}\n\n", "", 1)  # the query is not in its answer
                pages.append({"id": path.name.removesuffix(".gz"), "title": name_query(name), "text": text})
    else:
        for path in sorted(root.rglob("*.html")):
            text, title = html_to_text(path.read_text(encoding="utf-8", errors="replace"))
            if title and not title.lower().startswith(("index", "search", "genindex")):
                text = "\n".join(line for line in text.splitlines() if _NUMBERING.sub("", line).strip() != title)
                pages.append({"id": str(path.relative_to(root)), "title": title, "text": text})
    return [p for p in pages if len(p["text"].split()) >= MIN_WORDS]


def _download(packages: tuple[str, ...], work: Path) -> None:
    names = " ".join(packages)
    command = f"apt-get download {names} || (apt-get update -qq && apt-get download {names})"
    result = subprocess.run(["bash", "-c", command], cwd=work, capture_output=True, text=True)
    debs = list(work.glob("*.deb"))
    if result.returncode != 0 or len(debs) < len(packages):
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"Could not download the Debian packages {names} (apt-get download: {last[0]}).")
    for deb in debs:
        subprocess.run(["dpkg", "-x", str(deb), str(work / "x")], check=True)


def fetch_manuals(directory: str | Path, sources: tuple[str, ...] = tuple(SOURCES)) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for source in sources:
        if (directory / f"{source}.jsonl").exists() and (directory / f"{source}-queries.jsonl").exists():
            continue
        packages, inside = SOURCES[source]
        work = Path(tempfile.mkdtemp(prefix=f"{source}-"))
        try:
            _download(packages, work)
            pages = _pages(work / "x" / inside, source)
            titles: dict[str, int] = {}
            for page in pages:
                titles[page["title"]] = titles.get(page["title"], 0) + 1
            queries = [{"query": p["title"], "document": p["id"]} for p in pages if titles[p["title"]] == 1]
            for name, rows in ((f"{source}.jsonl", pages), (f"{source}-queries.jsonl", queries)):
                staging = directory / f".{name}.tmp"
                staging.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
                staging.rename(directory / name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return directory


if __name__ == "__main__":
    import sys

    target = fetch_manuals(sys.argv[1] if len(sys.argv) > 1 else ".cache/manuals")
    for source in SOURCES:
        count = sum(1 for _ in (target / f"{source}.jsonl").open())
        print(f"{source}: {count} pages in {target / (source + '.jsonl')}")
