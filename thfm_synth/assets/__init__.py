"""Asset libraries: manifest schema, the built-in library, scanning and validation."""
