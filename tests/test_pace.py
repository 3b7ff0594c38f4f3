"""A time budget and a cosine schedule: when the run falls behind the pace its steps need, the cosine is
shortened to end where the budget stops the run, never lengthened; on pace, or without a budget, the
schedule is train.steps as before."""

import json
import math

from charlstm import config
from charlstm.optim import learning_rate
from charlstm.pace import SETTLE, Pace

from conftest import run_cli


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_steps(pace, clock, steps, seconds_per_step, budget):
    """The loop's use of a Pace: span before each step, then the step takes its time; until the budget."""
    spans = []
    for step in range(steps):
        if clock.now >= budget:
            break
        spans.append(pace.span(step))
        clock.now += seconds_per_step
    return spans


def test_a_run_at_half_the_planned_speed_ends_its_cosine_where_the_budget_stops_it():
    clock = Clock()
    pace = Pace(1000, 100.0, 0, clock)  # 1,000 steps planned in 100 s; each takes 0.2 s: 500 fit
    spans = run_steps(pace, clock, 1000, 0.2, 100.0)
    assert len(spans) == 500
    assert spans[:int(SETTLE * 500)] == [1000] * int(SETTLE * 500)  # not judged before a tenth of the budget
    assert all(a >= b for a, b in zip(spans, spans[1:]))  # it only shrinks: the rate never climbs back
    assert pace.shortened_at in (int(SETTLE * 500), int(SETTLE * 500) + 1)  # the clock's sum of 0.2s, rounded
    assert 499 <= spans[-1] <= 501  # the projection, rounded down, may end one step early: progress is capped at 1
    cfg = config.load(overrides=["optim.schedule=cosine", "optim.lr=0.01", "optim.min_lr=0.001"]).optim
    last = learning_rate(cfg, 499, 0, spans[-1])
    assert math.isclose(last, 0.001, rel_tol=0.01)  # the end of the cosine, where it was 0.0055 unshortened
    assert learning_rate(cfg, 499, 0, 1000) > 0.005


def test_on_pace_or_without_a_budget_the_schedule_is_train_steps():
    clock = Clock()
    on_pace = Pace(1000, 100.0, 0, clock)
    assert set(run_steps(on_pace, clock, 1000, 0.095, 100.0)) == {1000} and on_pace.shortened_at is None
    clock = Clock()
    no_budget = Pace(1000, None, 0, clock)
    assert set(run_steps(no_budget, clock, 1000, 1.0, 10**9)) == {1000}


def test_a_resumed_session_judges_its_pace_from_its_own_first_step():
    """Resumed at step 600 with 400 steps left and 20 s at 0.1 s a step: 200 fit, so the cosine ends near
    800. Counting the steps of earlier sessions would make the session look six times faster than it is."""
    clock = Clock()
    pace = Pace(1000, 20.0, 600, clock)
    spans = []
    for step in range(600, 1000):
        clock.now = (step - 600) * 0.1
        if clock.now >= 20.0:
            break
        spans.append(pace.span(step))
    assert spans[0] == 1000 and 799 <= spans[-1] <= 801


def test_a_budgeted_cosine_run_that_cannot_make_its_steps_ends_near_min_lr(tmp_path, corpus):
    """Through the CLI: a million steps asked for in 3 seconds; the last logged rate is near min_lr, and the
    run said once that it shortened the cosine."""
    run = tmp_path / "run"
    code, _, err = run_cli("train", corpus, "--out", run, "--time-budget", "3s", "--steps", "1000000",
                           "--set", "train.workers=1", "--set", "optim.schedule=cosine", "--set", "optim.lr=0.01",
                           "--set", "optim.min_lr=0.001", "--set", "train.log_every=1", "--set", "model.hidden=16",
                           "--set", "model.layers=1", "--set", "train.eval_every=1000000")
    assert code == 0, err
    assert err.count("the learning rate's cosine now ends where the budget will") == 1, err
    rates = [json.loads(line)["lr"] for line in (run / "metrics.jsonl").read_text().splitlines()
             if "lr" in json.loads(line)]
    assert rates[0] > 0.009 and rates[-1] < 0.0015, (rates[0], rates[-1], len(rates))
