"""accel: the shared package behind *Accelerating Network Training*.

Small modules, one concept each; notebooks call into them so that every number in
the book comes from tested code.
"""
__version__ = "0.1.0"
