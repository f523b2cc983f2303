"""hytrace HTTP layer: FastAPI routers, dependencies and the error mapping."""
