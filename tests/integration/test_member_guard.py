"""The member write's guard against corrections made during a run must not mistake a
member whose records the sources dropped for one a correction created."""

from __future__ import annotations

from infra.neo4j_store import GraphStore
from infra.settings import Settings
from tests.integration.test_identity_graph import load, no_dangling, run_identity


def test_a_member_whose_records_all_left_the_sources_is_removed_not_refused(
    graph: GraphStore, settings: Settings
) -> None:
    load(graph)
    run_identity(settings)
    (row,) = graph.run(
        "MATCH (m:Member)-[:HAS_IDENTITY]->(i:Identity) "
        "WITH m, collect(i.observation_id) AS obs ORDER BY m.member_id LIMIT 1 "
        "RETURN m.member_id AS id, obs"
    )
    # Every record of that member removed upstream (as a graph load of the store does).
    graph.run("MATCH (i:Identity) WHERE i.observation_id IN $obs DETACH DELETE i", obs=row["obs"])
    run_identity(settings)  # asserts the run succeeds
    left = graph.run("MATCH (m:Member {member_id: $id}) RETURN count(m) AS n", id=row["id"])
    assert left[0]["n"] == 0
    no_dangling(graph)
