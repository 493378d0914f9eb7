"""`python -m pipeline.ops`: what an operator needs to see and steer the model lifecycle.

`status` (champion, alias history, recent versions with their gate decisions, every live
Predictor), `promote VERSION`, `rollback` and `retrain`. It moves aliases and announces like the
Trainer does, so every Predictor follows.
"""
