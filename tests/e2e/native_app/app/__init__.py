"""A small program with a blind spot, for the native recorder's end-to-end tests."""
