# Reads proglab's exports with pandas, keeping every answer as written (docs/researcher.md).
# proglab writes a missing value as an empty cell and nothing else; pandas' default also reads
# "None", "NA", "N/A", "null", "NaN" and more as missing, which would lose the answer "None".
import pandas as pd

# Columns that are text even where every value looks like a number or a boolean.
TEXT_COLUMNS = [
    "participant", "recruiter_id", "condition", "label", "program", "preprocessed_program",
    "programming_exp", "programming_game_exp", "item", "answer",
]


def read_export(path):
    """programs-csv, trials-csv, questionnaire-csv, a Psych-DS table, or the published file."""
    return pd.read_csv(
        path,
        keep_default_na=False,
        na_values=[""],
        dtype={column: str for column in TEXT_COLUMNS},
    )


def read_bonus(path):
    """bonus-csv: no header; the recruiter's participant ID and the amount."""
    return pd.read_csv(
        path,
        header=None,
        names=["recruiter_id", "amount"],
        keep_default_na=False,
        na_values=[""],
        dtype={"recruiter_id": str},
    )


def read_events(path):
    """events-jsonl: one JSON object per line; only JSON's null (or an absent key) is missing."""
    return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
