"""Print runs: the unit, carton and lot labels an organisation prints for a lot it holds.

``models`` (tables), ``capacity`` (how many labels a lot may carry), ``runs`` (what users ask
for), ``jobs`` (what a rendering worker does). Import the submodules; this package keeps no names
of its own so the event code can import ``capacity`` without a cycle.
"""
