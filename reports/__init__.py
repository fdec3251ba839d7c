"""Reports: read result records (never torch), aggregate with pandas, print tables."""
