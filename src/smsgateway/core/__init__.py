"""Gateway services: auth, messages, routing; no HTTP, no SQL."""
