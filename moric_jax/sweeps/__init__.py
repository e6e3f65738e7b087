"""Sweeps: many encodes as jobs (in process, local processes or SLURM arrays).

``launch``: the job runner, executors (``submitit``), per-job result files and the one
writer that merges them into ``results.csv``. ``rd``: the RD sweep (every image x
lambda against the baselines) and its collection step (tables, ``rd.png``,
``bd.json``). ``ablation``: the modulation ablation of the multi-region codec.
"""
