"""vpskit's benchmark (``make bench``): deploy speed, re-run cost per app, served throughput, and baselines."""
