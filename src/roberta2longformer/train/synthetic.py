"""LongEmbed-style synthetic retrieval (Zhu et al., 2024), built offline and seeded: can an embedder find one detail
anywhere in a long document?

Per length, ``documents`` candidate documents of about that many tokens (the first model's tokenizer counts)
share the task's ``queries``; each query has exactly one right document.

- **passkey**: the same filler repeated, with one sentence that gives a person's pass key hidden at a random
  sentence boundary; the query asks for that person's pass key.
- **needle**: real text (the ``--data`` documents, from a random sentence on), with one made-up fact about a
  person hidden at a random sentence boundary; the query is a question only that fact answers.

Standard library only: the tokenizer that counts is passed in.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import ConversionError
from .queries import PLACES, Query

TASKS = ("passkey", "needle")
LENGTHS = (256, 512, 1024, 2048, 4096)
#: LongEmbed's filler, as in the passkey test of Mohtashami & Jaggi (2023).
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
FIRST_NAMES = (
    "Ada", "Bruno", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Keiko", "Lars", "Mira",
    "Nadia", "Oskar", "Priya", "Quentin", "Rosa", "Samir", "Tilda", "Umar", "Vera", "Wim", "Xenia", "Yusuf", "Zora",
)  # fmt: skip
LAST_NAMES = (
    "Albers", "Brandt", "Castillo", "Dufour", "Eriksen", "Fontaine", "Gallo", "Hartmann", "Ivanova", "Jansen",
    "Kowalski", "Lindqvist", "Moreau", "Novak", "Okafor", "Petrov", "Quist", "Romero", "Sato", "Tanaka", "Ulrich",
    "Varga", "Weber", "Yilmaz", "Zimmermann",
)  # fmt: skip
_SLOTS = {
    "colour": ("red", "blue", "green", "yellow", "purple", "orange", "silver", "black", "white", "brown"),
    "animal": ("cat", "dog", "parrot", "tortoise", "rabbit", "goat", "horse", "hedgehog", "owl", "goldfish"),
    "pet": ("Pepper", "Biscuit", "Marble", "Juniper", "Toffee", "Comet", "Pickle", "Saffron", "Nutmeg", "Ziggy"),
    "city": ("Lisbon", "Tallinn", "Osaka", "Quito", "Dakar", "Bergen", "Hobart", "Tbilisi", "Cork", "Mendoza"),
    "instrument": ("cello", "oboe", "banjo", "harp", "trombone", "accordion", "sitar", "flute", "marimba", "viola"),
    "dish": ("lentil soup", "plum cake", "fish stew", "onion tart", "rice pudding", "bean chili", "apple crumble"),
    "number": tuple(str(n) for n in range(12, 98)),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "tool": ("hammer", "compass", "lantern", "telescope", "typewriter", "sewing machine", "microscope"),
}
#: (the fact hidden in the text, the question only it answers); ``{name}`` is unique per document.
NEEDLES = (
    ("{name} keeps a {colour} {animal} called {pet}.", "What is the name of {name}'s {colour} {animal}?"),
    ("{name} moved to {city} to play the {instrument} in a small orchestra.", "Why did {name} move to {city}?"),
    ("Every {weekday}, {name} cooks {dish} for the whole street.", "What does {name} cook every {weekday}?"),
    ("{name} was born in {city} and has lived on floor {number} ever since.", "Which floor does {name} live on?"),
    ("The {colour} {tool} on the shelf was a gift from {name}'s grandmother.", "Who gave {name} the {tool}?"),
    ("{name} learnt the {instrument} at the age of {number}.", "At what age did {name} learn the {instrument}?"),
    ("{name}'s favourite colour is {colour}, like the door of the house in {city}.", "What is {name}'s favourite colour?"),
    ("On {weekday} mornings {name} walks a {animal} named {pet} along the river.", "Whose {animal} does {name} walk?"),
    ("{name} repaired a {tool} in {city} and was paid {number} coins.", "How much was {name} paid for the {tool}?"),
    ("{name} paints every {animal} {colour} in the murals of {city}.", "Which colour are the animals in {name}'s murals?"),
    ("{name} never eats {dish} on a {weekday}.", "On which day does {name} avoid {dish}?"),
    ("{name} sold {number} old maps of {city} at the market.", "How many maps of {city} did {name} sell?"),
)  # fmt: skip


@dataclass
class SyntheticTask:
    task: str
    length: int
    ids: list[str]
    texts: list[str]
    queries: list[Query]


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if s]


def _names(generator: random.Random, count: int) -> list[str]:
    every = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
    if count > len(every):
        raise ConversionError(f"At most {len(every)} documents per length; ask for fewer.")
    return generator.sample(every, count)


def _document(
    sentences: Sequence[str], counts: Sequence[int], start: int, budget: int, hidden: str, hidden_tokens: int,
    generator: random.Random,
) -> tuple[str, str]:  # fmt: skip
    """Sentences from ``start`` on (wrapping) up to ``budget`` tokens with ``hidden`` placed between two of them,
    and the third of the document it sits in (``start``, ``middle`` or ``end``)."""
    taken, used = [], hidden_tokens
    index = start
    while used + counts[index % len(sentences)] <= budget:
        taken.append(sentences[index % len(sentences)])
        used += counts[index % len(sentences)]
        index += 1
    place = generator.randrange(len(taken) + 1)
    taken.insert(place, hidden)
    return " ".join(taken), PLACES[min(3 * place // len(taken), 2)]


def build_task(
    task: str,
    length: int,
    count_tokens: Callable[[str], int],
    *,
    seed: int = 0,
    haystack: Sequence[str] = (),
    documents: int = 100,
    queries: int = 50,
) -> SyntheticTask:
    """The ``task``'s candidate documents of about ``length`` tokens (``count_tokens`` counts, special tokens
    left room) and its queries (the first ``queries`` documents' people), seeded."""
    if task not in TASKS:
        raise ConversionError(f"Unknown task {task!r}; choose from {', '.join(TASKS)}.")
    if not 1 <= queries <= documents:
        raise ConversionError(f"Ask for between 1 and {documents} queries per length, not {queries}.")
    generator = random.Random(f"{task}-{length}-{seed}")
    source = FILLER if task == "passkey" else " ".join(haystack)
    sentences = _sentences(source)
    if not sentences:
        raise ConversionError("The needle task hides its facts in real text: give documents with --data.")
    counts = [max(count_tokens(s), 1) for s in sentences]
    budget = length - 2 - 8  # the special tokens, and room for joins that tokenize differently
    texts, asked = [], []
    for index, name in enumerate(_names(generator, documents)):
        if task == "passkey":
            key = generator.randrange(10_000, 100_000)
            hidden = f"The pass key of {name} is {key}. Remember it. {key} is the pass key of {name}."
            question = f"What is the pass key for {name}?"
        else:
            fact, ask = NEEDLES[generator.randrange(len(NEEDLES))]
            values = {slot: generator.choice(choices) for slot, choices in _SLOTS.items()} | {"name": name}
            hidden, question = fact.format_map(values), ask.format_map(values)
        start = generator.randrange(len(sentences)) if task == "needle" else 0
        text, place = _document(sentences, counts, start, budget, hidden, count_tokens(hidden), generator)
        texts.append(text)
        if index < queries:
            asked.append(Query(question, index, place))
    ids = [f"{task}-{length}-{i}" for i in range(documents)]
    return SyntheticTask(task, length, ids, texts, asked)


def parse_lengths(text: str) -> list[int]:
    """``"256,1024"`` → ``[256, 1024]``; each a whole number of at least 32 tokens."""
    try:
        lengths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        lengths = []
    if not lengths or min(lengths) < 32:
        raise ConversionError(f"--lengths {text!r} is not a list of token counts of at least 32, like 256,1024,4096.")
    return lengths
