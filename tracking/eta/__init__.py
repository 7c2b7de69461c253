"""ETAs for open stops: the estimator (engine.py) and when it runs (tracking/tasks.py)."""
