"""The step engine: load a model, build its optimizer, run one training step (plain torch or
DeepSpeed), save and restore trainable state. The one place a training step exists: the training
loop, the budget probe, the memory estimate and the step benchmark all call it."""
