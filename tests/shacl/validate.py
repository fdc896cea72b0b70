"""Validates catalog documents against SHACL shapes and prints one JSON line per document.

usage: validate.py SHAPES_DIR FILE:FORMAT...   (FORMAT is json-ld or turtle)

Each line: {"file", "triples", "datasets", "distributions", "catalogs", "datasets_with_policy",
"violations", "warnings", "infos", "messages" (violations), "warning_kinds" (paths)}. The exit code is 0 whenever validation ran, so
that the caller decides what counts as a failure; it is 2 when a document or shape cannot be read.
"""

import json
import sys
from pathlib import Path

from pyshacl import validate
from rdflib import Graph, Namespace, RDF

SH = Namespace("http://www.w3.org/ns/shacl#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
ODRL = Namespace("http://www.w3.org/ns/odrl/2/")


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    shapes = Graph()
    shape_files = sorted(Path(sys.argv[1]).glob("*.ttl"))
    if not shape_files:
        print(f"no shapes in {sys.argv[1]}", file=sys.stderr)
        return 2
    for f in shape_files:
        shapes.parse(f, format="turtle")
    for arg in sys.argv[2:]:
        path, _, fmt = arg.rpartition(":")
        data = Graph()
        # No base or remote context: the document must read offline, as the contract says.
        data.parse(path, format=fmt)
        _, results, _ = validate(
            data,
            shacl_graph=shapes,
            inference="none",
            abort_on_first=False,
            allow_warnings=True,
            meta_shacl=False,
            advanced=False,
        )
        counts = {SH.Violation: 0, SH.Warning: 0, SH.Info: 0}
        messages = []
        warning_kinds = set()
        for result in results.subjects(RDF.type, SH.ValidationResult):
            severity = results.value(result, SH.resultSeverity)
            counts[severity] = counts.get(severity, 0) + 1
            if severity == SH.Warning:
                warning_kinds.add(str(results.value(result, SH.resultPath)))
            if severity == SH.Violation and len(messages) < 25:
                messages.append(
                    " | ".join(
                        str(results.value(result, p))
                        for p in (SH.focusNode, SH.resultPath, SH.resultMessage)
                    )
                )
        print(
            json.dumps(
                {
                    "file": path,
                    "triples": len(data),
                    "catalogs": len(set(data.subjects(RDF.type, DCAT.Catalog))),
                    "datasets": len(set(data.subjects(RDF.type, DCAT.Dataset))),
                    "distributions": len(set(data.subjects(RDF.type, DCAT.Distribution))),
                    "datasets_with_policy": len(
                        {d for d in data.subjects(RDF.type, DCAT.Dataset) if (d, ODRL.hasPolicy, None) in data}
                    ),
                    "violations": counts[SH.Violation],
                    "warnings": counts[SH.Warning],
                    "infos": counts[SH.Info],
                    "messages": messages,
                    "warning_kinds": sorted(warning_kinds),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
