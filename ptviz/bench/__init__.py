"""``ptviz bench``: performance figures as ratios measured in one run."""
