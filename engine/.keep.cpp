// Keeps the library non-empty while the layer is being filled in.
