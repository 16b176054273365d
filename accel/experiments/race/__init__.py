"""``accel race``: time to target of training recipes on fixed small workloads, after MLCommons AlgoPerf.

- :mod:`.workloads`: the fixed workloads (model, data, loss, metric, evaluation schedule) and held-out variants;
- :mod:`.recipes`: a submission (optimizer, schedule, tricks, search space) from YAML, and its Sobol trials;
- :mod:`.trial`: one trial through the package's Lightning path, evaluated every k steps;
- :mod:`.runner`: cached, resumable, failure-isolated execution of trials;
- :mod:`.targets`: how targets and step budgets are set, and the file that stores them;
- :mod:`.scoring`: time to target, the external-tuning ruleset, performance profiles, the score;
- :mod:`.race`: a recipe's race and the comparison of several;
- :mod:`.cli`: the command behind ``accel race``.

Modules are imported on use (``from accel.experiments.race.scoring import score``): the
scoring needs no torch.
"""
