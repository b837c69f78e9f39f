"""The exact reference that tests and benchmarks share (issue 11, item 5): `exact_h50.npz`,
made by `python -m bench.reference.make_exact`, read by `bench.reference.load`."""
