"""peftbench: fair, distributed benchmarks of parameter-efficient fine-tuning methods on T5.

The one installed name. Its floors live in the repository's top-level folders and are mapped into
this package at install (pyproject.toml, ``[tool.setuptools] package-dir``), bottom to top:

    peftbench.models                    backbones, image encoders, feature cache, tiny models
    peftbench.methods, peftbench.tasks  what is compared
    peftbench.engine                    one training step (plain torch or DeepSpeed)
    peftbench.budgets                   memory budgets and the batch they allow
    peftbench.harness                   spec, trial, sweep under Ray Tune, records
    peftbench.cli, peftbench.reports    the commands; tables and plots from records alone
"""

__version__ = "0.1.0"
