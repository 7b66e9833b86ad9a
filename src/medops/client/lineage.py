"""Lineage methods of the SDK client: the graph around a node, the impact of a dataset
version, recording an edge and sending the OpenLineage outbox."""

from __future__ import annotations

from medops.client.shapes import Shape
from medops.client.transport import Transport
from medops.lineage.schemas import EdgeIn, ImpactReport, LineageEdgeOut, LineageGraph, SendSummary

_GRAPH = Shape(LineageGraph)
_IMPACT = Shape(ImpactReport)
_EDGE = Shape(LineageEdgeOut)
_SENT = Shape(SendSummary)


class LineageCalls(Transport):
    """Lineage methods of the SDK client."""

    def lineage(self, ref: str) -> LineageGraph:
        """Upstream and downstream of ``data:NAME@V``, ``model:NAME/V`` or
        ``deployment:NAME``."""
        return self._call("GET", "/api/v1/lineage", _GRAPH, params={"ref": ref})

    def lineage_impact(self, dataset: str) -> ImpactReport:
        """What a dataset version reaches: models, aliases, deployments, predictions."""
        return self._call("GET", "/api/v1/lineage/impact", _IMPACT, params={"dataset": dataset})

    def record_lineage(self, edge: EdgeIn) -> LineageEdgeOut:
        """Record that a dataset version was used to make another node."""
        return self._call("POST", "/api/v1/lineage/edges", _EDGE, json=edge.model_dump())

    def send_lineage(self) -> SendSummary:
        """Send the waiting OpenLineage events now."""
        return self._call("POST", "/api/v1/lineage/send", _SENT)
