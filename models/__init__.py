"""The models floor, below everything else: a model name parsed once (``spec``), backbones and how they
load (``load``: T5; ``vlt5``: VL-T5), the frozen image encoders and their feature cache, and the
tiny models that ship with peftbench (``tinyt5``).

Imported lazily (torch, transformers): ``spec`` alone is light, so listing tasks and validating a
spec never pay for the rest.
"""
