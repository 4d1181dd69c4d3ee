"""One module per step type the engine runs, each emulating its job or operation (see ../README.md)."""
