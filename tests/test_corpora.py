"""The Austen corpus reader's text handling (the download itself is exercised by the demo and experiments)."""

from __future__ import annotations

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
