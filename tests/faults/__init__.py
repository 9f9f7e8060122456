"""Fault-injection tier: plausible library bugs that ``cldro validate --quick`` must catch.

:mod:`.patcher` swaps a public library object on every path the claims use,
:mod:`.catalogue` lists the faults (each with the claim that must catch it), :mod:`.score`
runs them; ``python -m tests.faults`` prints the score table.
"""
