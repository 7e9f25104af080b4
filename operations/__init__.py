"""vpskit's reusable pyinfra operations, facts and config model."""
