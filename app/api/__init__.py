"""FastAPI routers, mounted under /api/v1 by app.main."""
