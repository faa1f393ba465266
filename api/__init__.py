"""The crlm-kg HTTP service (FastAPI): SPARQL endpoint, evidence API, browsing."""
