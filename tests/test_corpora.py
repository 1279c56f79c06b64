"""The corpus readers' text handling: Austen's novels, man pages and HTML manuals (the downloads themselves are
exercised by the demo and the experiments)."""

from __future__ import annotations

from manuals import html_to_text, name_query, roff_to_text

from austen import paragraphs, split_chapters

NOVEL = [
    "PERSUASION",
    "",
    "by Jane Austen",
    "",
    "",
    "Chapter 1",
    "",
    "Sir Walter Elliot, of Kellynch Hall,",
    "in Somersetshire, was a man who,",
    "",
    "for his own amusement,",
    "never took up any book",
    "",
    "CHAPTER II.",
    "",
    "Mr Shepherd, a civil, cautious lawyer,",
    "",
]


def test_lines_join_into_paragraphs_and_chapters():
    assert paragraphs(["a b", "c", "", "", "d", ""]) == ["a b c", "d"]
    chapters = split_chapters(NOVEL)
    assert chapters == [
        "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who,\nfor his own amusement, never took up any book\n",
        "Mr Shepherd, a civil, cautious lawyer,\n",
    ]  # front matter and chapter headings dropped


MAN_PAGE = r""".\" Copyright (c) someone
.TH LS 1 2023-02-05 "GNU coreutils"
.SH NAME
ls, dir \- list directory contents
.SH SYNOPSIS
.B ls
[\fIOPTION\fR]... [\fIFILE\fR]...
.SH DESCRIPTION
List information about the FILEs
(the current directory by default).
.PP
See
.BR dircolors (1)
and \(aqcolours\(aq \[bu] done.
"""


def test_a_man_page_reads_as_paragraphs_of_words_and_its_name_line_becomes_a_query():
    text, name = roff_to_text(MAN_PAGE)
    assert name == "ls, dir - list directory contents" and name_query(name) == "list directory contents"
    assert "List information about the FILEs (the current directory by default)." in text
    assert "See dircolors(1) and 'colours' • done." in text
    assert "ls [OPTION]... [FILE]..." in text and "Copyright" not in text and "\\f" not in text
    assert text.split("\n\n")[:2] == ["NAME", "ls, dir - list directory contents"]


def test_an_html_page_keeps_its_text_and_drops_navigation_and_numbering():
    page = """<html><head><title>9.4. String Functions | PostgreSQL 15</title><style>p {}</style></head><body>
    <div class="navheader"><div><a href="x">Prev</a></div> Up</div>
    <h1>9.4. String Functions</h1><p>Functions for <b>strings</b>&amp; text.</p>
    <div class="sphinxsidebar"><div><p>Table of Contents</p></div><p>more</p></div>
    <p>Second ¶ paragraph.</p><script>var x = 1;</script></body></html>"""
    text, title = html_to_text(page)
    assert title == "String Functions"
    assert text.splitlines() == ["9.4. String Functions", "Functions for strings& text.", "Second paragraph."]
