"""Whole satellite scenes: GeoTIFF/COG in, georeferenced ship polygons out, in bounded memory.

The `geo` extra (rasterio, shapely, pyogrio) is imported only when a scene is read or written,
so `import shiptoolkit` works without it.
"""
