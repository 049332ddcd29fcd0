"""Load generators: the built-in asyncio one, and an adapter for wrk."""
