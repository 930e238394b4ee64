"""Records benchmark: the hand-made line encoder of `records.py` against `json.dumps` of each record, in one run.

Usage (from the project root, a few seconds):

    .venv/bin/python bench/records.py

For a one-row request and a 1000-row batch (the default `MAX_BATCH_ROWS`) it times, in process and interleaved
(each round times both ways, so drift in the machine's speed hits both alike):
- `prediction_lines`: the lines from parts encoded once per model, route and distinct answer (what the server runs);
- `json.dumps` per record: `prediction_records(...)` and then `json.dumps(record, separators=(",", ":"))` of each.
It checks that both give the same lines, then prints the median time of each in microseconds over the rounds and
the ratio json.dumps / hand-made: above 1, the hand-made encoder is that many times faster.
"""
import json, statistics, timeit
from datetime import datetime, timezone

from iris_classifier.records import prediction_lines, prediction_records

SPECIES = ["setosa", "versicolor", "virginica"]
ANSWERS = [dict(species=s, class_index=i, probabilities={c: float(c == s) for c in SPECIES})
           for i, s in enumerate(SPECIES)]
ARGS = ("p0W9cY2mQ3kA1bZ8xR7t", "20261130T110000Z-1a2b3c", "api")
STAMP = datetime(2026, 11, 30, 12, 0, 0, 123456, timezone.utc)

def plain(rows:list, answers:list)->list[str]:
    "The lines the plain way: a record per row, each encoded by `json.dumps`"
    return [json.dumps(r, separators=(",", ":")) + "\n" for r in prediction_records(*ARGS, rows, answers, STAMP)]

def made(rows:list, answers:list)->list[str]:
    "The lines the server makes"
    return prediction_lines(*ARGS, rows, answers, STAMP.isoformat())

def usec(f, rows, answers, n:int)->float:
    "Microseconds per call of `f(rows, answers)`, best of 3 repeats of `n` calls"
    return min(timeit.repeat(lambda: f(rows, answers), number=n, repeat=3)) / n * 1e6

def main(rounds:int=7):
    "Time both ways on one row and on 1000 rows, and print the medians and their ratio"
    for size, n in [(1, 5000), (1000, 10)]:
        rows = [[5.1 + i % 7 / 10, 3.5, 1.4 + i % 5, 0.2 + i % 3 / 10] for i in range(size)]
        answers = [ANSWERS[i % 3] for i in range(size)]
        assert made(rows, answers) == plain(rows, answers), "the two ways must give the same lines"
        times = {"hand-made": [], "json.dumps": []}
        for _ in range(rounds):
            times["hand-made"].append(usec(made, rows, answers, n))
            times["json.dumps"].append(usec(plain, rows, answers, n))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{size:>5} row(s): hand-made {med['hand-made']:9.1f} us,"
              f" json.dumps per record {med['json.dumps']:9.1f} us,"
              f" ratio json.dumps / hand-made {med['json.dumps'] / med['hand-made']:.2f}")

if __name__ == "__main__": main()
