"""The page a browser gets from ``GET /sparql``: the YASGUI editor served locally, or a plain form."""

from __future__ import annotations

import html
import json

from crlm_kg import paths
from crlm_kg.settings import Settings

YASGUI_PATH = "/static/yasgui"


def yasgui_dir():
    return paths.BUILD_DIR / "yasgui" / "node_modules" / "@zazuko" / "yasgui" / "build"


EXAMPLE_QUERY = "".join(f"PREFIX {p}: <{iri}>\n" for p, iri in paths.PREFIXES.items() if p in ("crlm", "crlmd", "rdf", "rdfs", "skos")) + (
    "\nSELECT ?class ?label WHERE {\n  ?class a owl:Class ; rdfs:label ?label .\n  FILTER(STRSTARTS(STR(?class), STR(crlm:)))\n}\nORDER BY ?label\nLIMIT 50\n"
).replace("a owl:Class", "a <http://www.w3.org/2002/07/owl#Class>")

CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'self'"
)



def limits_text(settings: Settings) -> str:
    return (f"Read-only. Queries stop after {settings.query_timeout:g} s; results over {settings.max_results} rows or triples "
            f"or {settings.max_answer_bytes} bytes are refused (add a LIMIT); SERVICE is disabled.")


def browser_page(endpoint: str, settings: Settings) -> str:
    limits = limits_text(settings)
    if (yasgui_dir() / "yasgui.min.js").is_file():
        config = json.dumps({
            "requestConfig": {"endpoint": endpoint, "method": "POST"},
            "copyEndpointOnNewTab": False,
            "endpointCatalogueOptions": {"getData": None},
            "yasqe": {"value": EXAMPLE_QUERY},
            "persistenceId": "crlm-kg-sparql",
        })
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crlm-kg SPARQL</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{YASGUI_PATH}/yasgui.min.css">
<style>body{{font-family:system-ui,sans-serif;margin:0 1rem}} header p{{color:#555;margin:.25rem 0 .75rem}}</style>
</head><body>
<header><h1>crlm-kg SPARQL endpoint</h1><p>{html.escape(limits)} Service description: <code>curl -H 'Accept: text/turtle' {html.escape(endpoint)}</code></p></header>
<div id="yasgui"></div>
<script src="{YASGUI_PATH}/yasgui.min.js"></script>
<script>
const config = {config};
config.endpointCatalogueOptions = {{ getData: () => [{{ endpoint: config.requestConfig.endpoint }}] }};
new Yasgui(document.getElementById("yasgui"), config);
</script>
</body></html>
"""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>crlm-kg SPARQL</title></head>
<body style="font-family:system-ui,sans-serif;max-width:60rem;margin:auto">
<h1>crlm-kg SPARQL endpoint</h1>
<p>{html.escape(limits)}</p>
<form method="post" action="{html.escape(endpoint)}">
<p><textarea name="query" rows="16" cols="100" spellcheck="false">{html.escape(EXAMPLE_QUERY)}</textarea></p>
<p><button type="submit">Run query</button></p>
</form>
<p>(YASGUI is not installed; run <code>scripts/bootstrap.sh</code> for the full editor.)</p>
</body></html>
"""

