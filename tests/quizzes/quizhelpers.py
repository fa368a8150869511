"""Shared data of the quizzes tests."""

from __future__ import annotations

from typing import Any

# One question of every type; the answers are distinctive so that a scan of student-facing
# responses can look for them.
QUESTIONS: list[dict[str, Any]] = [
    {"type": "single_choice", "prompt": "Capital of France?",
     "options": ["Lyon", "Paris", "Nice"], "answer": 1, "points": 2},
    {"type": "multiple_choice", "prompt": "Primes?", "options": ["2", "4", "5", "9"],
     "answer": [0, 2], "points": 2, "scoring": "partial"},
    {"type": "true_false", "prompt": "The sky is green.", "answer": False, "points": 1},
    {"type": "numeric", "prompt": "Pi to 2 places", "answer": 3.14159, "tolerance": 0.005,
     "points": 1},
    {"type": "short_text", "prompt": "Name the zebra", "answer": "Zorblax-model-answer",
     "accept": ["Zorblax-sentinel"], "points": 2},
]
CORRECT = {0: 1, 1: [0, 2], 2: False, 3: 3.14, 4: "zorblax-SENTINEL"}
