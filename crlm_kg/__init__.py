"""crlm-kg: the knowledge graph of clinical evidence for colorectal liver metastases.

The package holds everything but the HTTP layer (which lives in the top-level
``api`` package): loading the graph, the store interface, patient validation,
the evidence lookup, the named queries and the quality gates.
"""

__version__ = "0.2.0"
