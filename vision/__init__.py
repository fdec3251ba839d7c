"""Vision for VL-T5: the model that reads image features, the frozen image encoders, the feature cache.

Imported lazily (torch, transformers): listing tasks must not pay for it.
"""
