"""The six scenarios; each ``run(config, results)`` covers every contender in one run."""
