"""`python -m fakes serve`: both platform fakes in one process, sharing one seeded population.

Used by the demo, which starts it in the background before materializing the API imports.
"""

from __future__ import annotations

import argparse
import signal
import threading

from fakes.data import WorldConfig, build_world
from fakes.eventbrite import DEFAULT_TOKEN, EventbriteFake
from fakes.luma import DEFAULT_KEY, LumaFake


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fakes")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="Serve the Luma and Eventbrite fakes.")
    serve.add_argument("--luma-port", type=int, default=8711)
    serve.add_argument("--eventbrite-port", type=int, default=8712)
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--luma-key", default=DEFAULT_KEY)
    serve.add_argument("--eventbrite-token", default=DEFAULT_TOKEN)
    args = parser.parse_args(argv)

    world = build_world(WorldConfig(seed=args.seed))
    luma = LumaFake(world, api_key=args.luma_key).serve(args.luma_port)
    eventbrite = EventbriteFake(world, token=args.eventbrite_token).serve(args.eventbrite_port)
    print(f"luma fake:       {luma.url}/v1", flush=True)
    print(f"eventbrite fake: {eventbrite.url}/v3", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    luma.stop()
    eventbrite.stop()


if __name__ == "__main__":
    main()
