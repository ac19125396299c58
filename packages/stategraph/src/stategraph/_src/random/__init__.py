"""Random states: a State holding a PRNG key, and the default global one."""
