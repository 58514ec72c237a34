"""One rendered video as a self-describing folder: layout, annotations, metadata, render-one, preview."""
