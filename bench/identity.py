"""Identity resolution: quality against labelled synthetic people, Splink side by side,
scale, and the Neo4j load against a per-row MERGE baseline — all in one run.

The generator makes realistic cross-platform people: nicknames (Bob/Robert), typos,
transliterations (Мария Иванова / Mariya Ivanova), gmail dots and +tags, work and
personal addresses, Partiful guests without email, family inboxes shared by two people,
different people with the same (common) name, placeholder plus-ones and test records.
Every observation carries the true person id, so precision and recall are exact.

    .venv/bin/python -m bench.identity [--quick] [--sizes 100000 1000000] [--runs 3]

Quality is pairwise (pairs of records put together) and B-cubed (per record) on the
comparison data set; Splink 4/5 (DuckDB backend) runs on the same data in the same
process with comparable comparisons. The true pairs still left apart are broken down
(why: not a candidate, a guard, below a threshold; which evidence they share), beside a
recall ceiling: pairs with no shared identifier whose name another person of the same
community also carries, which no system can link without merging namesakes. Scale
runs time our pipeline only (wall time and peak RSS above the start, sampled every
5 ms). The Neo4j part writes the member graph of a
sample into the configured Neo4j under `bench:` ids (removed afterwards, nothing else is
touched) and compares the batched write with one MERGE transaction per relationship.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import string
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
import psutil
from rich.console import Console
from rich.table import Table

from domain.identity.blocking import candidate_pairs
from domain.identity.features import event_groups, prepare_features, related_events
from domain.identity.pipeline import (
    Thresholds,
    build_members,
    cluster_scored,
    score_candidates,
)
from domain.model import ATTENDANCE_SCHEMA, EVENTS_SCHEMA, OBSERVATIONS_SCHEMA, conform

console = Console(width=150)

# --- the generator -------------------------------------------------------------------

FIRST = [
    "Robert",
    "William",
    "Richard",
    "James",
    "John",
    "Michael",
    "Elizabeth",
    "Katherine",
    "Margaret",
    "Alexander",
    "Christopher",
    "Daniel",
    "David",
    "Edward",
    "Joseph",
    "Thomas",
    "Anthony",
    "Andrew",
    "Benjamin",
    "Samuel",
    "Matthew",
    "Nicholas",
    "Patrick",
    "Peter",
    "Stephen",
    "Timothy",
    "Jennifer",
    "Jessica",
    "Rebecca",
    "Susan",
    "Victoria",
    "Charles",
    "Gregory",
    "Jeffrey",
    "Kenneth",
    "Lawrence",
    "Leonard",
    "Nathaniel",
    "Raymond",
    "Zachary",
    "Abigail",
    "Amanda",
    "Priya",
    "Aisha",
    "Fatima",
    "Omar",
    "Hiroshi",
    "Yuki",
    "Mei",
    "Wei",
    "Li",
    "Chen",
    "Hana",
    "Sofia",
    "Lucia",
    "Mateo",
    "Diego",
    "Camila",
    "Valentina",
    "Ana",
    "Lena",
    "Jonas",
    "Lukas",
    "Emma",
    "Mia",
    "Noah",
    "Liam",
    "Olivia",
    "Ava",
    "Isabella",
    "Ethan",
    "Mason",
    "Logan",
    "Lucas",
    "Oliver",
    "Elijah",
    "Aiden",
    "Jackson",
    "Harper",
    "Evelyn",
    "Avery",
    "Ella",
    "Scarlett",
    "Grace",
    "Chloe",
    "Zoe",
    "Nora",
    "Lily",
    "Hannah",
    "Layla",
    "Riley",
    "Aria",
    "Ellie",
    "Ruby",
    "Maya",
    "Naomi",
    "Kofi",
    "Amara",
    "Chidi",
    "Ngozi",
    "Tariq",
    "Leila",
    "Yara",
    "Arjun",
    "Rohan",
    "Ananya",
    "Kavya",
    "Ishaan",
    "Vikram",
    "Deepa",
    "Sanjay",
    "Ravi",
    "Meera",
]
LAST = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Chen",
    "Wang",
    "Zhang",
    "Liu",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Ma",
    "Zhu",
    "Hu",
    "Guo",
    "Lin",
    "Kim",
    "Park",
    "Choi",
    "Tanaka",
    "Suzuki",
    "Takahashi",
    "Watanabe",
    "Ito",
    "Yamamoto",
    "Nakamura",
    "Kobayashi",
    "Patel",
    "Shah",
    "Singh",
    "Kumar",
    "Sharma",
    "Gupta",
    "Reddy",
    "Iyer",
    "Nair",
    "Rao",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Owusu",
    "Diallo",
    "Traore",
    "Keita",
    "Mueller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Rossi",
    "Russo",
    "Ferrari",
    "Esposito",
    "Bianchi",
    "Romano",
    "Colombo",
    "Ricci",
    "Marino",
    "Greco",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefebvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Costa",
    "Pereira",
    "Almeida",
    "Carvalho",
    "Gomes",
    "Martins",
    "Novak",
    "Kowalski",
    "Nowak",
    "Wisniewski",
    "Horvat",
    "Jensen",
    "Hansen",
    "Nielsen",
    "Larsen",
    "Andersen",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Berg",
    "Dahl",
    "Lund",
    "Quintero",
    "Villanueva",
    "Castillo",
    "Mendoza",
    "Navarro",
    "Ortega",
    "Delgado",
    "Vargas",
    "Romero",
    "Herrera",
]
# Names written in Cyrillic on some platforms and transliterated (variously) on others.
CYRILLIC_FIRST = {
    "Mariya": "Мария", "Dmitry": "Дмитрий", "Ivan": "Иван", "Olga": "Ольга",
    "Sergey": "Сергей", "Natalia": "Наталья", "Yuri": "Юрий", "Anastasia": "Анастасия",
    "Alexander": "Александр", "Ekaterina": "Екатерина", "Andrey": "Андрей", "Elena": "Елена",
}  # fmt: skip
CYRILLIC_LAST = {
    "Ivanova": "Иванова", "Petrov": "Петров", "Smirnov": "Смирнов", "Kuznetsova": "Кузнецова",
    "Popov": "Попов", "Sokolov": "Соколов", "Volkova": "Волкова", "Morozov": "Морозов",
    "Novikova": "Новикова", "Fedorov": "Фёдоров", "Lebedeva": "Лебедева", "Kozlov": "Козлов",
}  # fmt: skip
ACCENTED = {"Jose": "José", "Garcia": "García", "Zoe": "Zoë", "Lopez": "López", "Perez": "Pérez",
            "Mueller": "Müller", "Sofia": "Sofía", "Ramirez": "Ramírez", "Lucia": "Lucía"}  # fmt: skip
NICK = {
    "Robert": ["Bob", "Rob", "Bobby"], "William": ["Will", "Bill"], "Richard": ["Rick", "Rich"],
    "James": ["Jim", "Jimmy"], "John": ["Johnny", "Jack"], "Michael": ["Mike"],
    "Elizabeth": ["Liz", "Beth"], "Katherine": ["Kate", "Katie"], "Margaret": ["Maggie", "Meg"],
    "Alexander": ["Alex", "Sasha"], "Christopher": ["Chris"], "Daniel": ["Dan", "Danny"],
    "David": ["Dave"], "Edward": ["Ed", "Ted"], "Joseph": ["Joe"], "Thomas": ["Tom"],
    "Anthony": ["Tony"], "Andrew": ["Andy", "Drew"], "Benjamin": ["Ben"], "Samuel": ["Sam"],
    "Matthew": ["Matt"], "Nicholas": ["Nick"], "Patrick": ["Pat"], "Peter": ["Pete"],
    "Stephen": ["Steve"], "Timothy": ["Tim"], "Jennifer": ["Jen", "Jenny"], "Jessica": ["Jess"],
    "Rebecca": ["Becky"], "Susan": ["Sue"], "Victoria": ["Vicky"], "Charles": ["Charlie"],
    "Gregory": ["Greg"], "Jeffrey": ["Jeff"], "Kenneth": ["Ken"], "Lawrence": ["Larry"],
    "Zachary": ["Zach"], "Abigail": ["Abby"], "Dmitry": ["Dima"], "Mariya": ["Masha"],
}  # fmt: skip
SYL_A = [
    "Kor",
    "Bel",
    "Dan",
    "Mar",
    "Vel",
    "Tor",
    "Sal",
    "Fen",
    "Hal",
    "Mor",
    "Ros",
    "Lin",
    "Var",
    "Gar",
    "Nor",
    "Cas",
    "Ber",
    "Dal",
    "Ken",
    "Lor",
]
SYL_B = ["a", "e", "i", "o", "u", "ia", "ei", "ou", "an", "en"]
SYL_C = [
    "vek",
    "ski",
    "ton",
    "berg",
    "ford",
    "man",
    "sen",
    "nik",
    "dez",
    "ola",
    "ri",
    "ard",
    "ell",
    "ini",
    "aro",
]
FIRST_W = [1 / (k + 8) for k in range(len(FIRST))]
LAST_W = [1 / (k + 8) for k in range(len(LAST))]
MAIL_DOMAINS = ["gmail.com"] * 5 + [
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "hotmail.com",
]
PLACEHOLDERS = ["Guest", "Plus one", "Plus One", "guest", "Friend"]


def _typo(rng: random.Random, s: str) -> str:
    if len(s) < 4:
        return s
    k = rng.randrange(1, len(s) - 1)
    op = rng.random()
    if op < 0.4:
        return s[:k] + s[k + 1] + s[k] + s[k + 2 :]  # transposition
    if op < 0.7:
        return s[:k] + s[k + 1 :]  # deletion
    return s[:k] + rng.choice(string.ascii_lowercase) + s[k + 1 :]  # substitution


class Generator:
    """Labelled observations; `truth` maps observation_id -> person id."""

    def __init__(self, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.used_locals: set[str] = set()
        self.used_handles: set[str] = set()
        self.used_gmail: set[str] = set()

    def _unique(self, base: str, used: set[str], dots_matter: bool = True) -> str:
        """A fresh local part; at gmail `a.b` and `ab` are one account, so both are taken."""

        def key(x: str) -> str:
            return x if dots_matter else x.replace(".", "")

        out = base
        while key(out) in used:
            out = f"{base}{self.rng.randrange(1, 9999)}"
        used.add(key(out))
        return out

    def person(self, pid: int) -> dict[str, Any]:
        rng = self.rng
        cyr = rng.random() < 0.06
        if cyr:
            first, last = rng.choice(list(CYRILLIC_FIRST)), rng.choice(list(CYRILLIC_LAST))
        else:
            # Zipf-like: a few names are common (different people, same name).
            first = rng.choices(FIRST, weights=FIRST_W)[0]
            # Surnames are long-tailed: the 250 most common US surnames cover about a
            # quarter of people; the rest carry rarer ones.
            last = (
                rng.choices(LAST, weights=LAST_W)[0]
                if rng.random() < 0.3
                else rng.choice(SYL_A)
                + rng.choice(SYL_B)
                + rng.choice(SYL_A).lower()
                + rng.choice(SYL_C)
            )
        f, la = first.lower(), last.lower()
        pattern = rng.random()
        base = (
            f"{f}.{la}"
            if pattern < 0.4
            else f"{f}{la}"
            if pattern < 0.6
            else f"{f[0]}{la}"
            if pattern < 0.8
            else f"{f}_{la}{rng.randrange(10, 99)}"
        )
        domain = rng.choice(MAIL_DOMAINS)
        personal = (
            (
                self._unique(base, self.used_gmail, dots_matter=False)
                if domain == "gmail.com"
                else self._unique(base, self.used_locals)
            )
            + "@"
            + domain
        )
        company = (
            f"{rng.choice(LAST)} {rng.choice(['Labs', 'Robotics', 'Capital', 'Studio', 'AI', 'Health'])}"
            if rng.random() < 0.5
            else None
        )
        work = None
        if company and rng.random() < 0.6:
            work = (
                self._unique(f"{f}.{la}", self.used_locals)
                + "@"
                + company.lower().replace(" ", "")
                + ".com"
            )
        return {
            "pid": pid,
            "first": first,
            "last": last,
            "cyr": cyr,
            "personal": personal,
            "work": work,
            "family": None,
            "phone": f"+1{rng.randrange(201, 989)}{rng.randrange(2000000, 9999999)}"
            if rng.random() < 0.55
            else None,
            "instagram": self._unique(f"{f}{la}"[:12], self.used_handles)
            if rng.random() < 0.35
            else None,
            "linkedin": self._unique(f"{f}-{la}", self.used_handles)
            if rng.random() < 0.25
            else None,
            "company": company,
            "title": rng.choice(["Engineer", "Founder", "Designer", "PM", "Researcher", None]),
        }

    def name_variant(self, p: dict[str, Any], source: str) -> tuple[str, str | None, str | None]:
        rng = self.rng
        first, last = p["first"], p["last"]
        r = rng.random()
        if p["cyr"] and rng.random() < 0.5:
            first, last = CYRILLIC_FIRST[first], CYRILLIC_LAST[last]
        elif r < 0.15 and first in NICK:
            first = rng.choice(NICK[first])
        elif r < 0.20:
            first = _typo(rng, first) if rng.random() < 0.5 else first
            last = _typo(rng, last) if first == p["first"] else last
        elif r < 0.23:
            first, last = ACCENTED.get(first, first), ACCENTED.get(last, last)
        elif r < 0.25:
            return f"{last} {first}", None, None  # swapped, full name only
        elif r < 0.27:
            return f"{first[0]}. {last}", f"{first[0]}.", last
        full = f"{first} {last}"
        if rng.random() < 0.05:
            full = full.lower()
        if source == "partiful" or rng.random() < 0.3:
            return full, None, None
        return full, first, last

    def email_variant(self, p: dict[str, Any]) -> str:
        rng = self.rng
        r = rng.random()
        email = p["personal"]
        if p["family"] and r < 0.5:
            email = p["family"]
        elif p["work"] and r < 0.35:
            email = p["work"]
        local, domain = email.split("@")
        if domain == "gmail.com":
            v = rng.random()
            if v < 0.1:
                local = local.replace(".", "")
            elif v < 0.15:
                local = f"{local}+{rng.choice(['events', 'luma', 'x'])}"
        if rng.random() < 0.01:
            local = _typo(rng, local)
        return f"{local}@{domain}"

    def generate(
        self, n_obs: int
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, int]]:
        rng = self.rng
        n_people = max(10, int(n_obs / 2.1))
        people = [self.person(k) for k in range(n_people)]
        # Households: two people with the same last name share an inbox.
        for k in range(0, n_people - 1, 2):
            if rng.random() < 0.05:
                a, b = people[k], people[k + 1]
                b["last"] = a["last"] if not (a["cyr"] or b["cyr"]) else b["last"]
                fam = (
                    self._unique(f"the{a['last'].lower()}family", self.used_gmail, False)
                    + "@gmail.com"
                )
                a["family"] = b["family"] = fam
        n_comm = max(1, n_people // 120)
        events_per_comm = 12
        sources = ["luma"] * 5 + ["eventbrite"] * 3 + ["partiful"] * 2
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        events: list[dict[str, Any]] = []
        for c in range(n_comm):
            for e in range(events_per_comm):
                src = rng.choice(sources)
                events.append(
                    {
                        "event_id": f"{src}:c{c}e{e}",
                        "source": src,
                        "source_event_id": f"c{c}e{e}",
                        "name": f"Meetup {c}/{e}",
                        "starts_at": t0 + timedelta(days=rng.randrange(0, 600)),
                    }
                )
        obs: list[dict[str, Any]] = []
        truth: dict[str, int] = {}
        plus_pid = n_people
        for p in people:
            comm = rng.randrange(n_comm)
            k = min(1 + int(rng.expovariate(1 / 1.6)), events_per_comm)
            for e in rng.sample(range(events_per_comm), k):
                if len(obs) >= n_obs:
                    break
                ev = events[comm * events_per_comm + e]
                src = ev["source"]
                oid = f"{src}:{len(obs)}"
                full, first, last = self.name_variant(p, src)
                at = ev["starts_at"] - timedelta(days=rng.randrange(1, 30))
                row = {
                    "observation_id": oid, "source": src, "source_record_id": str(len(obs)),
                    "event_id": ev["event_id"], "full_name": full, "first_name": first, "last_name": last,
                    "observed_at": at,
                }  # fmt: skip
                if src != "partiful":
                    row["email"] = self.email_variant(p)
                    if p["phone"] and rng.random() < 0.3:
                        row["phone"] = p["phone"]
                    if p["company"] and rng.random() < 0.5:
                        row["company"] = p["company"]
                        row["job_title"] = p["title"]
                    if p["instagram"] and rng.random() < 0.5:
                        row["handle_instagram"] = p["instagram"]
                    if p["linkedin"] and rng.random() < 0.5:
                        row["handle_linkedin"] = p["linkedin"]
                elif p["instagram"] and rng.random() < 0.3:
                    # Partiful exports carry no address or phone; a questionnaire may ask.
                    row["handle_instagram"] = p["instagram"]
                obs.append(row)
                truth[oid] = p["pid"]
                if rng.random() < 0.03 and len(obs) < n_obs:  # a plus-one or a test record
                    pid = plus_pid
                    plus_pid += 1
                    name = rng.choice(PLACEHOLDERS) if rng.random() < 0.9 else "Test"
                    poid = f"{src}:{len(obs)}"
                    obs.append(
                        {
                            "observation_id": poid,
                            "source": src,
                            "source_record_id": str(len(obs)),
                            "event_id": ev["event_id"],
                            "full_name": name,
                            "observed_at": at,
                        }
                    )
                    truth[poid] = pid
            if len(obs) >= n_obs:
                break
        frame = conform(pl.DataFrame(obs, infer_schema_length=None), OBSERVATIONS_SCHEMA)
        event_frame = conform(pl.DataFrame(events), EVENTS_SCHEMA)
        att = conform(
            frame.select(
                "event_id",
                "observation_id",
                pl.lit("registered").alias("status"),
                pl.lit("approved").alias("raw_status"),
                pl.lit("guest").alias("role"),
            ),
            ATTENDANCE_SCHEMA,
        )
        return frame, event_frame, att, truth


# --- metrics ---------------------------------------------------------------------------


def scores(pred: pl.DataFrame, truth: dict[str, int]) -> dict[str, float]:
    """Pairwise and B-cubed precision/recall/F1; `pred`: observation_id, cluster."""
    from bench.identity_febrl import quality

    return quality(pred, {k: str(v) for k, v in truth.items()})


def blocking_recall(features: pl.DataFrame, truth: dict[str, int]) -> tuple[float, float, int]:
    """Share of true pairs among candidates, and share reachable through candidate chains."""
    pairs, _ = candidate_pairs(
        features, event_group=event_groups(features, related_events(features))
    )
    person = np.array([truth[o] for o in features["observation_id"].to_list()])
    i, j = pairs["i"].to_numpy(), pairs["j"].to_numpy()
    true_cand = int((person[i] == person[j]).sum())
    t = pl.DataFrame({"person": person}).group_by("person").len()
    all_true = int(t.select((pl.col("len") * (pl.col("len") - 1) / 2).sum()).item())
    # Connected through same-person candidate edges: union-find over true candidate edges.
    parent = list(range(len(person)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(
        i[person[i] == person[j]].tolist(), j[person[i] == person[j]].tolist(), strict=True
    ):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
    comp = pl.DataFrame({"c": [find(k) for k in range(len(person))], "person": person})
    reach = int(
        comp.group_by("c", "person")
        .len()
        .select((pl.col("len") * (pl.col("len") - 1) / 2).sum())
        .item()
    )
    return true_cand / max(all_true, 1), reach / max(all_true, 1), pairs.height


def _community(event: pl.Expr) -> pl.Expr:
    """The generator's community of an event (`luma:c12e3` -> 12): ground truth only."""
    return event.str.extract(r":c(\d+)e", 1).cast(pl.Int64)


def missed_pairs(obs: pl.DataFrame, truth: dict[str, int], th: Thresholds) -> pl.DataFrame:
    """Every true pair the pipeline leaves apart, with what its two records share."""
    scored = score_candidates(obs, th)
    clusters = cluster_scored(scored)
    f = scored.features.with_row_index("r").with_columns(
        pl.col("observation_id").replace_strict(truth, return_dtype=pl.Int64).alias("person"),
        clusters.assignment["cluster"].alias("cluster"),
        _community(pl.col("event_id")).alias("community"),
    )
    recs = f.select(
        "r", "person", "cluster", "source", "event_id", "community", "name_key", "name_quality",
        "name_freq", "email_key", "phone", "company_f", "h_instagram", "h_linkedin",
    )  # fmt: skip
    pairs = (
        recs.join(recs, on="person", suffix="_b")
        .filter((pl.col("r") < pl.col("r_b")) & (pl.col("cluster") != pl.col("cluster_b")))
        .rename({"r": "i", "r_b": "j"})
        .with_columns(pl.col("i").cast(pl.UInt32), pl.col("j").cast(pl.UInt32))
    )
    cand = scored.pairs.select("i", "j", "decision", "guard", "match_probability")
    pairs = pairs.join(cand, on=["i", "j"], how="left")

    def same(c: str) -> pl.Expr:
        return (pl.col(c) == pl.col(f"{c}_b")).fill_null(False)

    rel = set(
        zip(
            *related_events(scored.features).select("event_a", "event_b").to_dict().values(),
            strict=True,
        )
    )
    ev = pairs.select("event_id", "event_id_b").rows()
    related = [(min(a, b), max(a, b)) in rel if a and b else False for a, b in ev]
    quality = pl.max_horizontal(
        pl.col("name_quality").replace_strict(
            {"ok": 0, "common": 1, "single": 2, "placeholder": 3}
        ),
        pl.col("name_quality_b").replace_strict(
            {"ok": 0, "common": 1, "single": 2, "placeholder": 3}
        ),
    )
    return pairs.with_columns(
        pl.Series("related_events", related),
        (same("email_key") | same("phone") | same("h_instagram") | same("h_linkedin")).alias("shared_identifier"),
        (pl.col("email_key").is_null() | pl.col("email_key_b").is_null()).alias("no_email_side"),
        same("company_f").alias("same_company"),
        same("name_key").alias("same_name"),
        same("community").alias("same_community"),
        quality.replace_strict({0: "ok", 1: "common", 2: "single", 3: "placeholder"}).alias("worst_name"),
        pl.concat_str([pl.min_horizontal("source", "source_b"), pl.max_horizontal("source", "source_b")], separator="-").alias("sources"),
        pl.when(pl.col("decision").is_null()).then(pl.lit("not a candidate")).otherwise(
            pl.concat_str([pl.col("decision"), pl.col("guard").fill_null("")], separator=" ")
        ).alias("why"),
    )  # fmt: skip


def ambiguous_share(obs: pl.DataFrame, truth: dict[str, int]) -> tuple[float, int]:
    """Share of true pairs no correct system can link.

    A pair is hopeless when its two records share no address, phone, handle or company
    and another person of the same event community carries the same (folded) name: the
    two records then fit both people equally well. Computed on the labels as generated.
    """
    f = prepare_features(obs).with_columns(
        pl.col("observation_id").replace_strict(truth, return_dtype=pl.Int64).alias("person"),
        _community(pl.col("event_id")).alias("community"),
    )
    namesakes = (
        f.filter(pl.col("name_key").is_not_null())
        .group_by("community", "name_key")
        .agg(pl.col("person").n_unique().alias("people"))
    )
    recs = f.with_row_index("r").join(namesakes, on=["community", "name_key"], how="left")
    cols = ["r", "person", "email_key", "phone", "company_f", "h_instagram", "h_linkedin", "people"]
    pairs = (
        recs.select(cols)
        .join(recs.select(cols), on="person", suffix="_b")
        .filter(pl.col("r") < pl.col("r_b"))
    )

    def same(c: str) -> pl.Expr:
        return (pl.col(c) == pl.col(f"{c}_b")).fill_null(False)

    shared = pl.any_horizontal(same(c) for c in cols[2:7])
    crowded = (pl.col("people").fill_null(1) > 1) & (pl.col("people_b").fill_null(1) > 1)
    hopeless = pairs.filter(~shared & crowded).height
    return hopeless / max(pairs.height, 1), hopeless


def breakdown_tables(obs: pl.DataFrame, truth: dict[str, int], th: Thresholds) -> None:
    missed = missed_pairs(obs, truth, th)
    total = sum(n * (n - 1) // 2 for n in pl.Series(list(truth.values())).value_counts()["count"])
    share, hopeless = ambiguous_share(obs, truth)
    t = Table(
        title=f"True pairs left apart: {missed.height:,} of {total:,} ({missed.height / total:.2%})"
    )
    for col in ("by", "value", "pairs", "share of missed"):
        t.add_column(col, justify="right" if col in ("pairs", "share of missed") else "left")
    for by in (
        "why",
        "worst_name",
        "sources",
        "no_email_side",
        "shared_identifier",
        "same_company",
        "same_name",
        "related_events",
        "same_community",
    ):
        counts = missed.group_by(by).len().sort("len", descending=True).head(6)
        for value, n in counts.iter_rows():
            t.add_row(by, str(value)[:60], f"{n:,}", f"{n / max(missed.height, 1):.1%}")
            by = ""
    t.caption = (
        f"recall ceiling: {hopeless:,} true pairs ({share:.2%}) share no identifier and carry a name "
        f"another person of their community also carries; at most {1 - share:.4f} recall "
        "without merging namesakes"
    )
    console.print(t)


class PeakMemory:
    """Peak RSS above the level at start, sampled by a thread (psutil)."""

    def __init__(self, interval: float = 0.005) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        gc.collect()
        self.start = self.proc.memory_info().rss
        self.peak = self.start
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)

    @property
    def mb(self) -> float:
        return (self.peak - self.start) / 1e6


# --- the two pipelines -------------------------------------------------------------------


def ours(obs: pl.DataFrame, th: Thresholds) -> tuple[pl.DataFrame, dict[str, float]]:
    t0 = time.perf_counter()
    scored = score_candidates(obs, th)
    t1 = time.perf_counter()
    clusters = cluster_scored(scored)
    t2 = time.perf_counter()
    build_members(obs, scored, clusters)
    t3 = time.perf_counter()
    phases = {
        "score": t1 - t0,
        "cluster": t2 - t1,
        "members": t3 - t2,
        "match": t2 - t0,
        "total": t3 - t0,
        "pairs": scored.pairs.height,
    }
    return clusters.assignment, phases


def splink_run(obs: pl.DataFrame, th: Thresholds, max_u_pairs: float) -> tuple[pl.DataFrame, float]:
    import splink.comparison_library as cl
    from splink import Linker, SettingsCreator, block_on
    from splink.backends.duckdb import DuckDBAPI

    t0 = time.perf_counter()
    df = obs.select(
        pl.col("observation_id").alias("unique_id"),
        pl.coalesce(pl.col("first_name"), pl.col("full_name").str.split(" ").list.first())
        .str.to_lowercase()
        .alias("first_name"),
        pl.coalesce(pl.col("last_name"), pl.col("full_name").str.split(" ").list.last())
        .str.to_lowercase()
        .alias("last_name"),
        "email",
        "phone",
        "handle_instagram",
        pl.col("company").str.to_lowercase().alias("company"),
    )
    db = DuckDBAPI()
    sdf = db.register(df.to_arrow())
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.ExactMatch("handle_instagram"),
            cl.JaroWinklerAtThresholds("company", [0.92]),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("email"),
            block_on("phone"),
            block_on("handle_instagram"),
            block_on("first_name", "last_name"),
            block_on("last_name", "substr(first_name, 1, 1)"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(sdf, settings, log_level=40)
    linker.training.estimate_probability_two_random_records_match([block_on("email")], recall=0.6)
    linker.training.estimate_u_using_random_sampling(max_pairs=max_u_pairs, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("first_name", "last_name")
    )
    pred = linker.inference.predict(threshold_match_probability=th.suggest_at)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(pred, th.merge_at)
    out = pl.from_arrow(clusters.as_duckdbpyrelation().select("unique_id, cluster_id").arrow())
    assert isinstance(out, pl.DataFrame)
    elapsed = time.perf_counter() - t0
    return out.rename({"unique_id": "observation_id", "cluster_id": "cluster"}), elapsed


# --- Neo4j load --------------------------------------------------------------------------


def neo4j_load(n_obs: int, baseline_rows: int) -> list[tuple[str, str, str, str]] | str:
    from infra import graph_schema as gs
    from infra.identity_store import WRITERS, IdentityStore, write_parallel
    from infra.neo4j_store import GraphStore
    from infra.settings import get_settings

    settings = get_settings()
    store = GraphStore.from_settings(settings)
    try:
        store.ping()
    except Exception as exc:  # the services are not running: say so, do not fail
        return f"skipped: Neo4j unreachable at {settings.neo4j_uri} ({type(exc).__name__})"
    gen = Generator(seed=5)
    obs, events, att, _ = gen.generate(n_obs)
    prefix = pl.lit("bench:")
    obs = obs.with_columns(
        (prefix + pl.col("observation_id")).alias("observation_id"),
        (prefix + pl.col("event_id")).alias("event_id"),
    )
    events = events.with_columns((prefix + pl.col("event_id")).alias("event_id"))
    att = att.with_columns(
        (prefix + pl.col("observation_id")).alias("observation_id"),
        (prefix + pl.col("event_id")).alias("event_id"),
    )
    th = Thresholds()
    scored = score_candidates(obs, th)
    clusters = cluster_scored(scored)
    members = build_members(obs, scored, clusters)
    ids = IdentityStore(store)
    rows: list[tuple[str, str, str, str]] = []

    def cleanup() -> None:
        with store.driver.session(database=store.database) as session:
            session.run(
                "MATCH (m:Member)-[:HAS_IDENTITY]->(i:Identity) WHERE i.observation_id STARTS WITH 'bench:' "
                "WITH DISTINCT m CALL (m) { DETACH DELETE m } IN TRANSACTIONS OF 5000 ROWS"
            ).consume()
            session.run(
                "MATCH (i:Identity) WHERE i.observation_id STARTS WITH 'bench:' "
                "CALL (i) { DETACH DELETE i } IN TRANSACTIONS OF 5000 ROWS"
            ).consume()
        store.run(
            "MATCH (m:Member) WHERE m.member_id IN $ids AND NOT (m)-[:HAS_IDENTITY]->() DETACH DELETE m",
            ids=members.members["member_id"].to_list(),
        )
        store.run("MATCH (s:MergeSuggestion) WHERE s.a STARTS WITH 'bench:' DETACH DELETE s")
        store.run("MATCH (e:Event) WHERE e.event_id STARTS WITH 'bench:' DETACH DELETE e")
        store.run("MATCH (h:Handle) WHERE NOT (h)--() DELETE h")

    try:
        store.ensure_schema()
        cleanup()
        store.upsert_imports(events, obs, att)
        t0 = time.perf_counter()
        report = ids.write(scored, clusters, members, scope_member_ids=[])
        write_s = time.perf_counter() - t0
        rel_s = report.relationship_seconds
        rows.append(
            (
                "member graph write, all steps",
                f"{report.relationships:,} rels + {report.members_written:,} member nodes",
                f"{write_s:.2f} s",
                ", ".join(f"{k} {v:.2f}s" for k, v in report.seconds.items()),
            )
        )
        rows.append(
            (
                "  its relationship writes (HAS_IDENTITY, HAS_HANDLE, MATCHED)",
                f"{report.relationships:,} rels",
                f"{rel_s:.2f} s",
                f"{report.relationships / rel_s:,.0f} rels/s",
            )
        )
        member_s = report.seconds.get("members", float("nan"))
        rows.append(
            (
                "  its member node writes (golden records, ~25 properties)",
                f"{report.members_written:,} nodes",
                f"{member_s:.2f} s",
                f"{report.members_written / member_s:,.0f} nodes/s",
            )
        )
        link_rows = members.assignment.sort("member_id", "observation_id").to_dicts()
        # Same relationships, batched vs one MERGE transaction per row, same run.
        sample = link_rows[:baseline_rows]
        store.run(
            "UNWIND $rows AS row MATCH (:Member)-[r:HAS_IDENTITY]->(:Identity {observation_id: row.observation_id}) DELETE r",
            rows=link_rows,
        )
        t0 = time.perf_counter()
        write_parallel(store, gs.LINK_MEMBER_IDENTITIES, link_rows)  # the store's own path
        batched_s = time.perf_counter() - t0
        store.run(
            "UNWIND $rows AS row MATCH (:Member)-[r:HAS_IDENTITY]->(:Identity {observation_id: row.observation_id}) DELETE r",
            rows=sample,
        )
        per_row = (
            f"MATCH (m:{gs.MEMBER} {{member_id: $member_id}}) MATCH (i:{gs.IDENTITY} {{observation_id: $observation_id}}) "
            f"MERGE (m)-[:{gs.HAS_IDENTITY}]->(i)"
        )
        t0 = time.perf_counter()
        with store.driver.session(database=store.database) as session:
            for row in sample:
                session.run(per_row, **row).consume()
        base_s = time.perf_counter() - t0
        batched_rate = len(link_rows) / batched_s
        base_rate = len(sample) / base_s
        rows.append(
            (
                f"HAS_IDENTITY batched ({store.batch_size // 1000}k/tx, {WRITERS} writers)",
                f"{len(link_rows):,} rels",
                f"{batched_s:.2f} s",
                f"{batched_rate:,.0f} rels/s",
            )
        )
        rows.append(
            (
                "HAS_IDENTITY per-row MERGE (baseline)",
                f"{len(sample):,} rels",
                f"{base_s:.2f} s",
                f"{base_rate:,.0f} rels/s",
            )
        )
        rows.append(("ratio batched / per-row", "", "", f"{batched_rate / base_rate:.1f}x"))
        before = store.counts()
        t0 = time.perf_counter()
        again = ids.write(scored, clusters, members, scope_member_ids=[])
        rerun_s = time.perf_counter() - t0
        skipped = again.extra.get("members_unchanged", 0)
        rows.append(
            (
                "rerun of the same write (unchanged members and keys skipped)",
                f"{skipped:,} of {again.members_written:,} members unchanged",
                f"{rerun_s:.2f} s",
                ", ".join(f"{k} {v:.2f}s" for k, v in again.seconds.items()),
            )
        )
        rows.append(
            ("rerun of the same write changes counts", "", "", str(store.counts() != before))
        )
    finally:
        cleanup()
        store.close()
    return rows


# --- main ----------------------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:.4f}"


def median_time(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--compare-size", type=int, default=None, help="observations for the quality comparison"
    )
    ap.add_argument("--sizes", type=int, nargs="*", default=None, help="scale runs (observations)")
    ap.add_argument("--runs", type=int, default=None)
    ap.add_argument("--neo4j-size", type=int, default=None)
    ap.add_argument("--neo4j-only", action="store_true", help="run only the Neo4j load section")
    args = ap.parse_args()
    compare_n = args.compare_size or (10_000 if args.quick else 100_000)
    sizes = (
        args.sizes if args.sizes is not None else ([20_000] if args.quick else [100_000, 1_000_000])
    )
    runs = args.runs or (1 if args.quick else 3)
    neo_n = args.neo4j_size or (5_000 if args.quick else 100_000)
    th = Thresholds()
    if args.neo4j_only:
        neo4j_table(neo_n, 1_000 if args.quick else 3_000)
        return

    console.print(f"generating {compare_n:,} labelled observations …")
    obs, _, _, truth = Generator(seed=11).generate(compare_n)
    people = len(set(truth.values()))
    match_times: list[float] = []

    def timed_ours() -> tuple[pl.DataFrame, dict[str, float]]:
        out = ours(obs, th)
        match_times.append(out[1]["match"])
        return out

    ours_s, (assign, phases) = median_time(timed_ours, runs)
    phases["match"] = statistics.median(match_times)
    q_ours = scores(assign, truth)
    pair_recall, chain_recall, n_pairs = blocking_recall(prepare_features(obs), truth)
    try:
        splink_s, (sp_assign, _) = median_time(
            lambda: splink_run(obs, th, 2e5 if args.quick else 1e6), runs
        )
        q_sp: dict[str, float] | None = scores(sp_assign, truth)
    except ImportError as exc:
        console.print(f"[yellow]Splink not installed ({exc}); install the bench group[/]")
        q_sp, splink_s = None, float("nan")

    t = Table(
        title=f"Quality on {compare_n:,} observations of {people:,} people (median of {runs} runs)"
    )
    t.add_column("metric")
    t.add_column("ours", justify="right")
    t.add_column("Splink (DuckDB)", justify="right")
    t.add_column("ours − Splink", justify="right")
    t.add_column("goal")
    goals = {"precision": "≥ 0.995", "recall": "≥ 0.97", "f1": "≥ Splink", "b3_f1": "≥ Splink"}
    for k in ("precision", "recall", "f1", "b3_precision", "b3_recall", "b3_f1"):
        sp = q_sp[k] if q_sp else float("nan")
        t.add_row(k, fmt(q_ours[k]), fmt(sp), f"{q_ours[k] - sp:+.4f}", goals.get(k, ""))
    t.add_row(
        "wall time, match (s)",
        f"{phases['match']:.2f}",
        f"{splink_s:.2f}",
        f"{splink_s / phases['match']:.1f}x faster" if q_sp else "",
        "≤ Splink",
    )
    t.add_row("wall time incl. golden records (s)", f"{ours_s:.2f}", "", "", "")
    t.add_row("candidate pairs", f"{n_pairs:,}", "", "", "")
    t.add_row("blocking recall (true pairs among candidates)", fmt(pair_recall), "", "", "")
    t.add_row("blocking recall (true pairs connected by candidates)", fmt(chain_recall), "", "", "")
    console.print(t)
    breakdown_tables(obs, truth, th)

    s = Table(title="Scale: our pipeline (score + cluster + golden records), one run per size")
    for col in (
        "observations",
        "candidate pairs",
        "score s",
        "cluster s",
        "members s",
        "total s",
        "obs/s",
        "peak RSS above start",
        "goal",
    ):
        s.add_column(col, justify="right")
    for n in sizes:
        gen_obs, _, _, _ = Generator(seed=3).generate(n)
        gc.collect()
        with PeakMemory() as mem:
            _, ph = ours(gen_obs, th)
        s.add_row(
            f"{gen_obs.height:,}", f"{int(ph['pairs']):,}", f"{ph['score']:.1f}", f"{ph['cluster']:.1f}", f"{ph['members']:.1f}",
            f"{ph['total']:.1f}", f"{gen_obs.height / ph['total']:,.0f}", f"{mem.mb:,.0f} MB", "≤ 120 s" if n >= 1_000_000 else "",
        )  # fmt: skip
        del gen_obs
    console.print(s)

    neo4j_table(neo_n, 1_000 if args.quick else 3_000)


def neo4j_table(neo_n: int, baseline_rows: int) -> None:
    n4 = neo4j_load(neo_n, baseline_rows)
    g = Table(title=f"Neo4j load of the member graph ({neo_n:,} observations), same run")
    for col in ("write", "size", "time", "rate"):
        g.add_column(col, justify="right")
    if isinstance(n4, str):
        g.add_row(n4, "", "", "")
    else:
        for row in n4:
            g.add_row(*row)
    g.caption = "goals: ≥ 20,000 rels/s batched and ≥ 20× the per-row baseline"
    console.print(g)


if __name__ == "__main__":
    main()
