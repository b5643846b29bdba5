"""The one definition of the Neo4j graph: labels, keys, constraints and indexes.

Pipeline and API both import from here, so a rename happens in one place.

    (:Identity {observation_id, source, email, ...})   one per source record (an observation)
    (:Identity)-[:ATTENDED {status, raw_status, role, registered_at, checked_in_at}]->(:Event {event_id})
    (:Identity)-[:PLUS_ONE_OF]->(:Identity)
    (:Identity)-[:HAS_HANDLE]->(:Handle {platform, handle})
    (:Member {member_id, display_name, ...metrics})-[:HAS_IDENTITY]->(:Identity)
    (:Member)-[:CO_ATTENDED {weight, events}]->(:Member)

A member's attendance is the path (:Member)-[:HAS_IDENTITY]->(:Identity)-[:ATTENDED]->(:Event).
"""

from __future__ import annotations

MEMBER = "Member"
IDENTITY = "Identity"
EVENT = "Event"
HANDLE = "Handle"

HAS_IDENTITY = "HAS_IDENTITY"
ATTENDED = "ATTENDED"
PLUS_ONE_OF = "PLUS_ONE_OF"
HAS_HANDLE = "HAS_HANDLE"
CO_ATTENDED = "CO_ATTENDED"

CONSTRAINTS: tuple[str, ...] = (
    f"CREATE CONSTRAINT member_id IF NOT EXISTS FOR (m:{MEMBER}) REQUIRE m.member_id IS UNIQUE",
    f"CREATE CONSTRAINT identity_id IF NOT EXISTS FOR (i:{IDENTITY}) REQUIRE i.observation_id IS UNIQUE",
    f"CREATE CONSTRAINT event_id IF NOT EXISTS FOR (e:{EVENT}) REQUIRE e.event_id IS UNIQUE",
    f"CREATE CONSTRAINT handle_key IF NOT EXISTS FOR (h:{HANDLE}) REQUIRE (h.platform, h.handle) IS UNIQUE",
)

INDEXES: tuple[str, ...] = (
    f"CREATE INDEX identity_email IF NOT EXISTS FOR (i:{IDENTITY}) ON (i.email)",
    f"CREATE INDEX identity_source IF NOT EXISTS FOR (i:{IDENTITY}) ON (i.source)",
    f"CREATE INDEX event_source IF NOT EXISTS FOR (e:{EVENT}) ON (e.source)",
    f"CREATE INDEX event_starts_at IF NOT EXISTS FOR (e:{EVENT}) ON (e.starts_at)",
    f"CREATE INDEX member_name IF NOT EXISTS FOR (m:{MEMBER}) ON (m.display_name)",
)

UPSERT_EVENTS = f"""
UNWIND $rows AS row
MERGE (e:{EVENT} {{event_id: row.event_id}})
SET e.source = row.source, e.source_event_id = row.source_event_id, e.name = row.name,
    e.starts_at = row.starts_at, e.ends_at = row.ends_at, e.timezone = row.timezone,
    e.url = row.url, e.city = row.city
"""

UPSERT_IDENTITIES = f"""
UNWIND $rows AS row
MERGE (i:{IDENTITY} {{observation_id: row.observation_id}})
SET i += row
"""

UPSERT_ATTENDANCE = f"""
UNWIND $rows AS row
MATCH (i:{IDENTITY} {{observation_id: row.observation_id}})
MATCH (e:{EVENT} {{event_id: row.event_id}})
MERGE (i)-[a:{ATTENDED}]->(e)
SET a.status = row.status, a.raw_status = row.raw_status, a.role = row.role,
    a.registered_at = row.registered_at, a.checked_in_at = row.checked_in_at
"""

UPSERT_PLUS_ONES = f"""
UNWIND $rows AS row
MATCH (g:{IDENTITY} {{observation_id: row.observation_id}})
MATCH (h:{IDENTITY} {{observation_id: row.plus_one_of}})
MERGE (g)-[:{PLUS_ONE_OF}]->(h)
"""

EVENTS_WITH_COUNTS = f"""
MATCH (e:{EVENT})
OPTIONAL MATCH (i:{IDENTITY})-[a:{ATTENDED}]->(e)
WITH e, count(a) AS guests, count(CASE WHEN a.status = 'attended' THEN 1 END) AS attended
RETURN e.event_id AS event_id, e.source AS source, e.name AS name, e.starts_at AS starts_at,
       e.timezone AS timezone, e.url AS url, e.city AS city, guests, attended
ORDER BY e.starts_at DESC, e.event_id
SKIP $skip LIMIT $limit
"""

COUNT_EVENTS = f"MATCH (e:{EVENT}) RETURN count(e) AS n"

# --- Community analytics: attendance in, per-member metrics and CO_ATTENDED out -------

MEMBER_ATTENDANCE = f"""
MATCH (m:{MEMBER})-[:{HAS_IDENTITY}]->(:{IDENTITY})-[a:{ATTENDED}]->(e:{EVENT})
WHERE e.starts_at IS NOT NULL AND ($end IS NULL OR e.starts_at < $end)
RETURN m.member_id AS member_id, e.event_id AS event_id, e.starts_at AS starts_at,
       a.status AS status, a.checked_in_at IS NOT NULL AS checked_in
"""

ALL_MEMBER_IDS = f"MATCH (m:{MEMBER}) RETURN m.member_id AS member_id ORDER BY member_id"

SET_MEMBER_METRICS = f"""
UNWIND $rows AS row
MATCH (m:{MEMBER} {{member_id: row.member_id}})
SET m += row.props
"""

DELETE_CO_ATTENDED = f"""
MATCH (:{MEMBER})-[r:{CO_ATTENDED}]->(:{MEMBER})
CALL (r) {{ DELETE r }} IN TRANSACTIONS OF 10000 ROWS
"""

CREATE_CO_ATTENDED = f"""
UNWIND $rows AS row
MATCH (a:{MEMBER} {{member_id: row.a}})
MATCH (b:{MEMBER} {{member_id: row.b}})
CREATE (a)-[:{CO_ATTENDED} {{weight: row.weight, events: row.events}}]->(b)
"""

MEMBER_NETWORK = f"""
MATCH (m:{MEMBER} {{member_id: $member_id}})
RETURN m.member_id AS member_id, m.display_name AS display_name,
       properties(m) AS props
"""

CONNECTORS = f"""
MATCH (m:{MEMBER})
WHERE m.net_is_articulation = true OR m.net_bridges > 0
RETURN m.member_id AS member_id, m.display_name AS display_name,
       m.net_is_articulation AS is_articulation, m.net_bridges AS bridges,
       m.net_betweenness AS betweenness, m.net_community AS community,
       m.net_degree AS degree
ORDER BY m.net_betweenness DESC, m.member_id
SKIP $skip LIMIT $limit
"""

COUNT_CONNECTORS = f"""
MATCH (m:{MEMBER}) WHERE m.net_is_articulation = true OR m.net_bridges > 0
RETURN count(m) AS n
"""

TOP_MEMBERS_BY = f"""
MATCH (m:{MEMBER}) WHERE m.net_computed_at IS NOT NULL
RETURN m.member_id AS member_id, m.display_name AS display_name, properties(m) AS props
ORDER BY m[$metric] DESC, m.member_id
SKIP $skip LIMIT $limit
"""

METRICS_COVERAGE = f"""
MATCH (m:{MEMBER})
RETURN count(m) AS members,
       count(CASE WHEN m.net_computed_at = $stamp THEN 1 END) AS with_metrics
"""
