"""Command line: ``bambu-edge [--config PATH] COMMAND``.

Exit codes: 0 ok, 1 failure, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from bambu_edge import __version__
from bambu_edge.config import Config, ConfigError, config_path_from_env, load_config
from bambu_edge.logs import setup_logging

EXIT_BAD_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bambu-edge", description="Bambu Lab / Klipper printer appliance daemon")
    p.add_argument(
        "--config", help="config file (default: $BAMBU_EDGE_CONFIG or /etc/bambu-edge/config.yaml)"
    )
    p.add_argument("--version", action="version", version=f"bambu-edge {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the daemon")
    demo = sub.add_parser("demo", help="run the daemon with virtual printers on a local broker (./var)")
    demo.add_argument("--dir", default="var", help="working folder (default: ./var)")
    demo.add_argument("--https-port", type=int)
    demo.add_argument("--http-port", type=int)
    sub.add_parser("check-config", help="validate the config file and exit")
    sub.add_parser("migrate", help="apply database migrations and exit")
    backup = sub.add_parser("backup", help="write a backup (config, database, certificates) to FILE")
    backup.add_argument("file", metavar="FILE")
    restore = sub.add_parser("restore", help="restore a backup FILE (stop the daemon first)")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument(
        "--keep-config",
        action="store_true",
        help="keep the current config file (the backup's is left beside the data)",
    )

    user = sub.add_parser("user", help="manage dashboard users").add_subparsers(
        dest="user_cmd", required=True
    )
    add = user.add_parser("add", help="add a user; the password is read from stdin")
    add.add_argument("name")
    add.add_argument("--role", choices=("admin", "user"), default="admin")
    user.add_parser("list", help="list users")

    token = sub.add_parser("token", help="manage API tokens").add_subparsers(dest="token_cmd", required=True)
    create = token.add_parser("create", help="create an API token and print it")
    create.add_argument("name", help="what the token is for, e.g. home-assistant")
    create.add_argument("--user", help="owner (default: the only admin)")
    tl = token.add_parser("list", help="list API tokens")
    tl.add_argument("--user")
    revoke = token.add_parser("revoke", help="revoke an API token")
    revoke.add_argument("token_id", type=int)

    vp = sub.add_parser(
        "virtual-printer", help="run a virtual Bambu printer on an MQTT broker", add_help=False
    )
    vp.add_argument("args", nargs=argparse.REMAINDER)
    return p


def _load(args: argparse.Namespace) -> Config:
    from bambu_edge.app import config_sections  # every component's section is validated

    return load_config(config_path_from_env(args.config), sections=config_sections())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The virtual printer has its own flags; hand them over untouched.
    if argv and argv[0] == "virtual-printer":
        from bambu_edge.printers.virtual import virtual_printer_main

        return virtual_printer_main(argv[1:])
    args = _parser().parse_args(argv)

    if args.command == "demo":
        from bambu_edge.demo.run import demo_main

        return demo_main(Path(args.dir), https_port=args.https_port, http_port=args.http_port)

    try:
        config = _load(args)
    except ConfigError as e:
        print(f"bambu-edge: bad config: {e}", file=sys.stderr)
        return EXIT_BAD_CONFIG

    if args.command == "check-config":
        print(f"{config.source}: ok ({len(config.printers)} printers)")
        return 0
    if args.command == "run":
        return run_daemon(config, reload=lambda: _load(args))

    if args.command in ("backup", "restore"):
        from bambu_edge.backup import cli as backup_cli

        if args.command == "backup":
            return backup_cli.backup_cmd(config, args.file)
        return backup_cli.restore_cmd(config, args.file, keep_config=args.keep_config)

    from bambu_edge.store import cli as store_cli

    if args.command == "migrate":
        return store_cli.migrate_cmd(config)
    if args.command == "user":
        if args.user_cmd == "add":
            return store_cli.user_add_cmd(config, args.name, args.role, sys.stdin)
        return store_cli.user_list_cmd(config)
    if args.command == "token":
        if args.token_cmd == "create":
            return store_cli.token_create_cmd(config, args.name, args.user)
        if args.token_cmd == "list":
            return store_cli.token_list_cmd(config, args.user)
        return store_cli.token_revoke_cmd(config, args.token_id)
    raise AssertionError(args.command)


def run_daemon(config: Config, reload: Callable[[], Config] | None = None) -> int:
    """Run until stopped. A restart the daemon asks for (a restore from the dashboard) happens in
    this process, with the config file read again (kept as it was if it has become invalid)."""
    from bambu_edge.app import Daemon
    from bambu_edge.component import StartError

    setup_logging(config.log_level)
    while True:
        daemon = Daemon(config)
        try:
            asyncio.run(daemon.run())
        except (StartError, OSError) as e:  # e.g. port already in use: say so plainly, no traceback
            print(f"bambu-edge: cannot start: {e}", file=sys.stderr)
            return 1
        if not daemon.restart_requested:
            return 0
        if reload is not None:
            try:
                config = reload()
            except ConfigError as e:
                logging.getLogger(__name__).error("restarting with the config as it was: %s", e)
