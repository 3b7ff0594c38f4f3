"""The span of the learning-rate schedule in a session with a time budget: train.steps while the run keeps
the pace that fits them in the budget, and fewer when it falls behind, so that a cosine still ends at
optim.min_lr where the budget stops the run instead of being cut off high.

A run falls behind on a machine that slows down after its steps were timed (model.size auto plans
train.steps from a few timed steps, with a 5% margin: autosize.MARGIN), or when --steps asks for more
than the budget holds. The span only shrinks, so the rate never climbs back; it is judged from the
session's average pace once a tenth of the budget has passed, validations included. It belongs to the
session, as the budget does: a resumed run plans from train.steps again.
"""

import time

SETTLE = 0.1  # of the budget that passes before the pace is judged: the first steps and validation are lumpy


class Pace:
    """span(step) before each step: the steps the schedule spans (the `total_steps` of optim.learning_rate).
    `shortened_at` is the step at which it first fell below train.steps, or None."""

    def __init__(self, steps, budget, first_step, clock=time.monotonic):
        self.steps, self.budget, self.first, self.clock = steps, budget, first_step, clock
        self.start = clock()
        self.current = steps
        self.shortened_at = None

    def span(self, step):
        if self.budget is None or step == self.first:
            return self.current
        elapsed = self.clock() - self.start
        if elapsed < SETTLE * self.budget:
            return self.current
        per_step = elapsed / (step - self.first)
        fits = step + int(max(self.budget - elapsed, 0.0) / per_step)
        if fits < self.current:
            if self.shortened_at is None:
                self.shortened_at = step
            self.current = max(fits, step + 1)
        return self.current
