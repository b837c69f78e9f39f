"""Curve cubes: per-image chunked Zarr stores of per-pixel generation rates, opened as xarray."""
