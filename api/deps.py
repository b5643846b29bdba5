"""Per-process clients, created in the app's lifespan and handed to routes."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from infra.neo4j_store import GraphStore
from infra.redis_store import FigureStore
from infra.settings import Settings


@dataclass
class AppState:
    settings: Settings
    graph: GraphStore
    figures: FigureStore


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.platform
    return state
