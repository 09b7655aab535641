"""API faces: parse, authenticate, translate; no business rules."""
