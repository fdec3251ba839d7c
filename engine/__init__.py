"""The step engine: load a model, build its optimizer, run one training step (plain torch or
DeepSpeed), save and restore trainable state. The one place a training step exists: the training
loop, the budget probe, the memory estimate and the step benchmark all call it."""

# How a trial's arithmetic may be set (engine/devices.py ``set_precision``); named here, without
# torch, so that checking a trial's settings imports nothing heavy.
PRECISIONS = ("fp32", "bf16")
