"""Orchestration between the data layers and the shells: the rules and sequences of an
operation (what may be removed, in which order), with no terminal or UI of their own."""
