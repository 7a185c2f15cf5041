"""Generators of realistic test files (3MF, G-code) and hostile ones; used by every helper's tests."""
