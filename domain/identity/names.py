"""Name folding: transliteration, nicknames, placeholders and handle clean-up."""

from __future__ import annotations

import re
from functools import lru_cache

from anyascii import anyascii

# Nickname -> canonical given name. Both sides fold to the canonical form, so
# "Bob" and "Robert" (and "Bobby", "Rob") compare equal.
_NICKNAME_GROUPS: dict[str, tuple[str, ...]] = {
    "robert": ("bob", "bobby", "rob", "robbie", "bert"),
    "william": ("bill", "billy", "will", "willy", "liam"),
    "richard": ("rick", "ricky", "dick", "rich", "richie"),
    "james": ("jim", "jimmy", "jamie"),
    "john": ("johnny", "jack", "jon"),
    "jonathan": ("jonny",),
    "michael": ("mike", "mikey", "mick", "mikhail", "michal", "michel"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "eliza", "elisabeth", "lisa"),
    "katherine": ("kate", "katie", "kathy", "catherine", "kat", "cathy", "katya", "ekaterina"),
    "margaret": ("maggie", "meg", "peggy", "marge"),
    "alexander": ("alex", "sasha", "alexandr", "aleksandr", "oleksandr", "alejandro", "sandro"),
    "alexandra": ("alexa", "lexi", "aleksandra", "sandra"),
    "christopher": ("chris", "kit", "topher"),
    "christina": ("christine", "tina", "kristina"),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davey"),
    "edward": ("ed", "eddie", "ted", "teddy", "ned"),
    "joseph": ("joe", "joey", "jose", "giuseppe"),
    "thomas": ("tom", "tommy"),
    "anthony": ("tony", "antonio", "anton"),
    "andrew": ("andy", "drew", "andrei", "andrey", "andres", "andreas"),
    "benjamin": ("ben", "benny", "benji"),
    "samuel": ("sam", "sammy"),
    "samantha": ("sammie",),
    "matthew": ("matt", "matty", "matteo", "mathieu"),
    "nicholas": ("nick", "nicky", "nico", "nikolai", "nikolay", "nicolas"),
    "patrick": ("pat", "paddy"),
    "patricia": ("patty", "trish", "tricia"),
    "peter": ("pete", "pyotr", "pedro", "pierre", "petr"),
    "stephen": ("steve", "steven", "stephan", "stefan", "esteban"),
    "timothy": ("tim", "timmy"),
    "jennifer": ("jen", "jenny", "jenn"),
    "jessica": ("jess", "jessie"),
    "rebecca": ("becky", "becca"),
    "susan": ("sue", "susie", "suzanne"),
    "deborah": ("deb", "debbie"),
    "victoria": ("vicky", "tori"),
    "charles": ("charlie", "chuck", "carlos", "karl", "carl"),
    "francis": ("frank", "frankie", "francisco", "francois", "franz"),
    "gregory": ("greg",),
    "jeffrey": ("jeff",),
    "kenneth": ("ken", "kenny"),
    "lawrence": ("larry", "laurence"),
    "leonard": ("leo", "len", "lenny"),
    "nathaniel": ("nate", "nathan", "nat"),
    "raymond": ("ray",),
    "ronald": ("ron", "ronnie"),
    "zachary": ("zach", "zack"),
    "abigail": ("abby", "abbie"),
    "amanda": ("mandy",),
    "dmitry": ("dmitri", "dima", "dmitrii"),
    "ivan": ("vanya",),
    "maria": ("mariia", "mariya", "masha", "marie", "mary", "maryam"),
    "anastasia": ("nastya", "stacy", "stacey"),
    "yevgeny": ("evgeny", "evgenii", "zhenya", "eugene", "evgeniy"),
    "mohammed": ("mohammad", "muhammad", "mohamed", "mohamad", "mo"),
    "olga": ("olya",),
    "natalia": ("natalya", "natasha", "natalie"),
    "sergey": ("sergei", "serhii", "sergio", "serge"),
    "yuri": ("yury", "iurii", "yuriy"),
}
NICKNAMES: dict[str, str] = {
    alias: canon for canon, aliases in _NICKNAME_GROUPS.items() for alias in aliases
}

PLACEHOLDER_NAMES: frozenset[str] = frozenset(
    {
        "guest",
        "plus one",
        "plusone",
        "plus 1",
        "test",
        "test test",
        "test user",
        "unknown",
        "anonymous",
        "anon",
        "na",
        "n a",
        "none",
        "no name",
        "friend",
        "guest of",
        "tbd",
        "x",
        "me",
        "someone",
        "attendee",
    }
)

_NON_ALPHA = re.compile(r"[^a-z0-9 ]+")
_SPACES = re.compile(r"\s+")
_COMPANY_SUFFIX = re.compile(
    r"\b(inc|llc|ltd|gmbh|corp|co|corporation|limited|sa|ag|plc|bv|srl|the)\b"
)
_HANDLE_PREFIX = re.compile(
    r"^(https?://)?(www\.)?(instagram\.com/|linkedin\.com/in/|linkedin\.com/|twitter\.com/|x\.com/|github\.com/)?@?"
)


@lru_cache(maxsize=500_000)
def fold(text: str | None) -> str | None:
    """ASCII transliteration, lower case, letters and digits only (José -> jose, Мария -> mariia)."""
    if text is None:
        return None
    out = _SPACES.sub(" ", _NON_ALPHA.sub(" ", anyascii(text).lower().replace("'", ""))).strip()
    return out or None


def is_placeholder(folded_full: str | None) -> bool:
    if folded_full is None:
        return True
    return folded_full in PLACEHOLDER_NAMES or folded_full.startswith(("guest of ", "plus one"))


@lru_cache(maxsize=200_000)
def fold_company(text: str | None) -> str | None:
    f = fold(text)
    if f is None:
        return None
    out = _SPACES.sub(" ", _COMPANY_SUFFIX.sub(" ", f)).strip()
    return out or f


@lru_cache(maxsize=200_000)
def clean_handle(text: str | None) -> str | None:
    """`https://instagram.com/Alice/` and `@alice` both become `alice`."""
    if text is None:
        return None
    out = _HANDLE_PREFIX.sub("", text.strip().lower()).strip("/").split("?")[0].strip()
    return out or None


GMAIL_DOMAINS: frozenset[str] = frozenset({"gmail.com", "googlemail.com"})


@lru_cache(maxsize=500_000)
def canonical_email(email: str | None) -> str | None:
    """Drops `+tags` everywhere and dots where the provider ignores them (gmail)."""
    if email is None or "@" not in email:
        return None
    local, _, domain = email.strip().lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    if not local:
        return None
    return f"{local}@{domain}"
