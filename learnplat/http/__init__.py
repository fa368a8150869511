"""The HTTP layer: Falcon app, middleware, endpoint declarations, problems, OpenAPI."""
