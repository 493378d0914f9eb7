"""Tools on top of everything: the demo, the benchmark, the fault suite, the sample stream and
the sandbox that copies a champion for them. Nothing below imports them.
"""
