"""Task packets: what an agent is asked to do and how its work is judged.

schema.py     the packet.yaml schema and its strict loader (every error names file, key, fix)
gates.py      running the gates in the sandbox (hidden files only at gate time), the run assertion
selfcheck.py  does a packet prove anything? gates fail untouched and pass with the reference
"""
