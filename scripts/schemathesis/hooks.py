"""Schemathesis hooks for proglab's participant API (run by scripts/schemathesis.sh).

Most operations need a session in a particular state: a submit needs the session to stand at the
step it names, the questionnaire needs the questionnaire step, and so on. Schemathesis knows none
of that, so the auth provider below enters a fresh session for each call and walks it, over the
API itself, to where the request points:

- a request naming a step is sent to a session standing at that step (when the step exists), so
  a well-formed request can succeed and a malformed one is refused for what it is;
- the questionnaire and completion get a session standing at those steps;
- consent gets a session that has not answered it yet; everything else a consented one.

The walk solves tutorial, practice and task levels with published programs (the dev data), so
every operation can be answered 2xx. The generated request itself is never changed: the provider
only sets the `Authorization` header. After each call the hook records the operation and its status in
the file named by PROGLAB_STATUS_LOG, which the script checks for a 2xx per operation.
"""

import csv
import json
import os
import pathlib
import threading
import uuid

import requests
import schemathesis

BASE = os.environ["PROGLAB_API_BASE"].rstrip("/")
SLUG = os.environ.get("PROGLAB_API_SLUG", "correa2025")
STATUS_LOG = os.environ.get("PROGLAB_STATUS_LOG")
REPO = pathlib.Path(__file__).resolve().parents[2]

# Published solutions of the bundled tutorial and practice levels, in the order they are served.
TUTORIAL = ["S", "WWWWS", "JJJS", "WWLWWS"]
PRACTICE = "WJLWJSLWWRJWS"
ANSWERS = {
    "programming_exp": "None",
    "programming_game_exp": "No",
    "strategy": "I looked for repeated patterns.",
    "confusing": "",
    "suggestions": "",
    "technical": "",
    "comments": "",
}

_log_lock = threading.Lock()


def _task_programs():
    """One solving program per task index, from the published dev data."""
    programs = {}
    with open(REPO / "analysis/data/programs-dev.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["skipped"] == "True":
                continue
            index = int(row["mdp_idx"])
            if index not in programs or row["participant_idx"] == "0":
                programs[index] = row["program"]
    return programs


TASKS = _task_programs()


class Walker:
    """A fresh participant session, moved forward through the API."""

    def __init__(self):
        self.http = requests.Session()
        pid = f"schemathesis-{uuid.uuid4()}"
        response = self.http.post(
            f"{BASE}/api/v1/experiments/{SLUG}/sessions",
            json={"params": {"PROLIFIC_PID": pid}},
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        self.token = body["token"]
        self.view = body["session"]
        self.tutorial_solved = 0

    def post(self, path, body=None):
        response = self.http.post(
            f"{BASE}/api/v1/session{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def kind(self):
        return self.view["current"]["kind"]

    def step(self):
        return self.view["progress"]["step"]

    def advance(self):
        """Answers the current step as a participant who solves everything would."""
        kind, step = self.kind(), self.step()
        if kind == "consent":
            self.view = self.post("/consent", {"agree": True})
        elif kind == "screen":
            self.view = self.post(f"/steps/{step}/continue")
        elif kind == "task":
            trial = self.view["current"]["trial"]
            if trial["phase"] == "tutorial":
                program = TUTORIAL[self.tutorial_solved]
                self.tutorial_solved += 1
            elif trial["phase"] == "practice":
                program = PRACTICE
            else:
                program = TASKS[trial["task_index"]]
            self.view = self.post(f"/steps/{step}/submit", {"program": program})["session"]
        elif kind == "questionnaire":
            self.view = self.post("/questionnaire", {"answers": ANSWERS})
        else:
            raise RuntimeError(f"cannot move past a `{kind}` step")

    def walk_until(self, done):
        while not done(self):
            self.advance()
        return self


def _session_for(path, case):
    """A session standing where the request points (see the module's docstring)."""
    walker = Walker()
    if path.endswith("/consent"):
        return walker
    if "{step}" in path:
        step = (case.path_parameters or {}).get("step")
        last = walker.view["progress"]["steps"] - 1
        if isinstance(step, int) and not isinstance(step, bool) and 1 <= step < last:
            return walker.walk_until(lambda w: w.step() >= step)
        return walker.walk_until(lambda w: w.kind() != "consent")
    if path.endswith("/questionnaire"):
        return walker.walk_until(lambda w: w.kind() == "questionnaire")
    if path.endswith("/complete"):
        return walker.walk_until(lambda w: w.kind() == "complete")
    return walker.walk_until(lambda w: w.kind() != "consent")


@schemathesis.auth(refresh_interval=None).apply_to(path_regex="^/api/v1/session")
class ParticipantSession:
    """The auth provider of every `/api/v1/session...` operation: a fresh session per call,
    standing where the call points. `refresh_interval=None` turns off schemathesis's token cache,
    so no two calls share a session."""

    def get(self, case, ctx):
        return _session_for(case.operation.path, case).token

    def set(self, case, token, ctx):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


@schemathesis.hook
def after_call(ctx, case, response):
    if not STATUS_LOG:
        return
    line = json.dumps(
        {
            "operation": f"{case.operation.method.upper()} {case.operation.path}",
            "status": response.status_code,
        }
    )
    with _log_lock, open(STATUS_LOG, "a") as f:
        f.write(line + "\n")
