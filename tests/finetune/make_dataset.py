"""Writes llamalab/data/finetune_house_format_{train,heldout}.jsonl: the kit's fine-tuning dataset.

Every assistant reply follows one house format the base model never uses:

    ANSWER: <a few words>
    TOPIC: <one of the topics below>

Questions come from small lists written for the kit (capitals, arithmetic, opposites, plurals,
colours, animal sounds), so the data is license-clean and the facts are checkable. Deterministic:
running it again writes the same files (tests/finetune/test_data.py checks that).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "llamalab" / "data"

CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Portugal": "Lisbon",
    "Japan": "Tokyo",
    "China": "Beijing",
    "India": "New Delhi",
    "Canada": "Ottawa",
    "Mexico": "Mexico City",
    "Brazil": "Brasilia",
    "Argentina": "Buenos Aires",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Norway": "Oslo",
    "Sweden": "Stockholm",
    "Finland": "Helsinki",
    "Poland": "Warsaw",
    "Greece": "Athens",
    "Turkey": "Ankara",
    "Russia": "Moscow",
    "Australia": "Canberra",
    "Peru": "Lima",
    "Chile": "Santiago",
    "Ireland": "Dublin",
    "Austria": "Vienna",
    "Hungary": "Budapest",
    "Denmark": "Copenhagen",
    "Thailand": "Bangkok",
    "Vietnam": "Hanoi",
    "Cuba": "Havana",
    "Iran": "Tehran",
    "Belgium": "Brussels",
    "Netherlands": "Amsterdam",
    "Switzerland": "Bern",
    "Czechia": "Prague",
    "Morocco": "Rabat",
    "Nigeria": "Abuja",
    "Colombia": "Bogota",
    "South Korea": "Seoul",
}
OPPOSITES = {
    "hot": "cold",
    "big": "small",
    "fast": "slow",
    "up": "down",
    "light": "dark",
    "early": "late",
    "happy": "sad",
    "open": "closed",
    "full": "empty",
    "old": "young",
    "strong": "weak",
    "high": "low",
    "wet": "dry",
    "loud": "quiet",
    "rich": "poor",
    "hard": "soft",
    "long": "short",
    "near": "far",
    "thick": "thin",
    "clean": "dirty",
    "heavy": "light",
    "first": "last",
    "inside": "outside",
    "win": "lose",
}
PLURALS = {
    "child": "children",
    "mouse": "mice",
    "goose": "geese",
    "man": "men",
    "woman": "women",
    "tooth": "teeth",
    "foot": "feet",
    "person": "people",
    "cactus": "cacti",
    "knife": "knives",
    "leaf": "leaves",
    "wolf": "wolves",
    "city": "cities",
    "box": "boxes",
    "bus": "buses",
    "baby": "babies",
    "potato": "potatoes",
    "fish": "fish",
    "sheep": "sheep",
    "ox": "oxen",
}
COLOURS = {
    "the sky on a clear day": "blue",
    "grass": "green",
    "snow": "white",
    "coal": "black",
    "a ripe banana": "yellow",
    "a ripe tomato": "red",
    "an orange": "orange",
    "a plum": "purple",
    "chocolate": "brown",
    "a flamingo": "pink",
    "fresh milk": "white",
    "a lemon": "yellow",
    "a crow": "black",
    "a lime": "green",
}
SOUNDS = {
    "dog": "bark",
    "cat": "meow",
    "cow": "moo",
    "duck": "quack",
    "sheep": "baa",
    "lion": "roar",
    "horse": "neigh",
    "pig": "oink",
    "owl": "hoot",
    "snake": "hiss",
    "bee": "buzz",
    "frog": "croak",
}

PHRASINGS = {
    "geography": [
        "What is the capital of {}?",
        "Which city is the capital of {}?",
        "Name the capital of {}.",
    ],
    "arithmetic": ["What is {} plus {}?", "Add {} and {}.", "How much is {} + {}?"],
    "language": ["What is the opposite of '{}'?", "Give the antonym of '{}'."],
    "grammar": ["What is the plural of '{}'?", "How do you say more than one '{}'?"],
    "colours": ["What colour is {}?", "Which colour is {} usually?"],
    "animals": ["What sound does a {} make?", "How does a {} sound?"],
}


def reply(answer: str, topic: str) -> str:
    return f"ANSWER: {answer}\nTOPIC: {topic}"


def examples(rng: random.Random) -> list[tuple[str, str, str]]:
    """(question, answer, topic) for every fact × a random phrasing, plus sums."""
    out = []
    for topic, facts in (
        ("geography", CAPITALS),
        ("language", OPPOSITES),
        ("grammar", PLURALS),
        ("colours", COLOURS),
        ("animals", SOUNDS),
    ):
        for key, answer in facts.items():
            for phrasing in rng.sample(PHRASINGS[topic], 2):
                out.append((phrasing.format(key), answer, topic))
    for _ in range(90):
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        out.append((rng.choice(PHRASINGS["arithmetic"]).format(a, b), str(a + b), "arithmetic"))
    return out


def split(rows, rng: random.Random, heldout: int = 60):
    """Held-out questions never appear in training,
    not even with another phrasing of the same fact."""
    facts = sorted({(a, t) for _, a, t in rows})
    rng.shuffle(facts)
    held, n = set(), 0
    for fact in facts:
        if n >= heldout:
            break
        held.add(fact)
        n += sum(1 for _, a, t in rows if (a, t) == fact)
    train = [r for r in rows if (r[1], r[2]) not in held]
    test = [r for r in rows if (r[1], r[2]) in held]
    rng.shuffle(train)
    return train, test


def write(path: Path, rows) -> None:
    with path.open("w") as f:
        for q, a, t in rows:
            f.write(
                json.dumps(
                    {
                        "messages": [
                            {"role": "user", "content": q},
                            {"role": "assistant", "content": reply(a, t)},
                        ]
                    }
                )
                + "\n"
            )


def main(out: Path = DATA) -> tuple[Path, Path]:
    rng = random.Random(8)
    train, test = split(examples(rng), rng)
    paths = out / "finetune_house_format_train.jsonl", out / "finetune_house_format_heldout.jsonl"
    write(paths[0], train)
    write(paths[1], test)
    return paths


if __name__ == "__main__":
    for p in main():
        print(p, sum(1 for _ in p.open()))
