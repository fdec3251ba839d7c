"""peftbench's harness: CLI, sweep spec, Ray Tune orchestration, one trial, the training loop."""
