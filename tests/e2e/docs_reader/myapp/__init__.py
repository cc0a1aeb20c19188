"""The reader's package in the documents' examples (see ../README.md)."""
