"""Hand-written PyTorch (and numpy) versions of the bundled specs, for parity tests.

Where a seed story has its own module, it is copied here as the story wrote it
(only re-indented, since the saved posts lost their indentation); the others
are written the way a PyTorch user would write them without specc.
"""
