"""Memory budgets: parse "24GB", measure on a GPU, estimate without one, pick the batch size."""
