"""`nb-assets deploy image|up|down|backup|rotate`: the deployment recipe (Postgres, code server,
webserver, daemon, a container per run); see deploy/stack.py."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nb_assets.deploy.config import DeploySettings

DEFAULT_STATE = Path(".deploy")


def add_deploy_command(sub: Any) -> None:
    deploy = sub.add_parser("deploy", help="Dagster as deployed: Postgres storage, daemon, a container per run")
    deploy_sub = deploy.add_subparsers(dest="deploy_command", required=True)
    image = deploy_sub.add_parser("image", help="build the code image (offline: FROM the sandbox image)")
    image.add_argument("--project", type=Path, default=Path("."), help="the project: the folder holding definitions.py, or a dg project's root")
    image.add_argument("--force", action="store_true")
    image.set_defaults(func=cmd_deploy_image)
    start = deploy_sub.add_parser("up", help="start the deployment and return once the UI serves the project")
    start.add_argument("--project", type=Path, default=Path("."), help="the project: the folder holding definitions.py, or a dg project's root")
    start.add_argument("--state", type=Path, default=DEFAULT_STATE, help="where the deployment keeps everything")
    start.add_argument("--port", type=int, default=3000, help="the webserver's port")
    start.add_argument("--code-server-port", type=int, default=4266)
    start.add_argument("--postgres-port", type=int, default=5433)
    start.add_argument("--max-runs", type=int, default=2, help="notebook runs at once (the queue holds the rest)")
    start.add_argument("--warehouse", default="", help="the warehouse (default: the deployment's own Postgres database `warehouse`)")
    start.add_argument("--storage", default="",
                       help="an existing Postgres for Dagster's runs, events and schedules, postgresql://USER[:PASSWORD]@HOST:PORT/DB "
                            "(default: the deployment's own database `dagster`); a password is kept in the state folder's secrets.json")
    start.add_argument("--seed", type=Path, help="a script run once on a new warehouse, NB_ASSETS_WAREHOUSE in its environment")
    start.add_argument("--landing", default="", help="the host folder of file drops (default: STATE/landing)")
    start.add_argument("--sources", default="", metavar="DIR",
                       help="the host folder of declared file sources, mounted read-only at /opt/project/sources "
                            "(default: the project's sources/, if it has one)")
    start.add_argument("--worker-retention", type=int, default=300, metavar="SECONDS",
                       help="how long a finished run worker's container is kept before its logs are saved and it is removed")
    start.add_argument("--smtp", default="", metavar="HOST:PORT", help="the SMTP server notices go to, as the host network sees it")
    start.add_argument("--secret-env", action="append", default=[], metavar="NAME",
                       help="pass the variable NAME (a password, a token) to the project; kept in secrets.json, never in a config file")
    start.add_argument("--restore", type=Path, help="a `deploy backup` folder to load into this new deployment first")
    start.set_defaults(func=cmd_deploy_up)
    save = deploy_sub.add_parser("backup", help="pg_dump Dagster's storage and the warehouse, and copy the records")
    save.add_argument("--state", type=Path, default=DEFAULT_STATE)
    save.add_argument("--to", type=Path, help="the backup folder to make (default: STATE/backups/<time>)")
    save.set_defaults(func=cmd_deploy_backup)
    rotate = deploy_sub.add_parser("rotate", help="new passwords for the deployment's logins (then deploy down + up)")
    rotate.add_argument("--state", type=Path, default=DEFAULT_STATE)
    rotate.set_defaults(func=cmd_deploy_rotate)
    stop = deploy_sub.add_parser("down", help="stop everything the deployment started")
    stop.add_argument("--state", type=Path, default=DEFAULT_STATE)
    stop.add_argument("--purge", action="store_true", help="also remove the state folder (runs, records, databases)")
    stop.set_defaults(func=cmd_deploy_down)


def cmd_deploy_image(args: argparse.Namespace) -> int:
    from nb_assets.deploy.code_image import build_code_image

    print(build_code_image(args.project, force=args.force))
    return 0


def deploy_settings(args: argparse.Namespace) -> DeploySettings:
    """`deploy up`'s options as the deployment's settings; a --sources folder that is not there
    is refused here, before anything is built or started."""
    from nb_assets.deploy.config import DeploySettings, sources_folder

    return DeploySettings(
        state_dir=args.state.resolve(), webserver_port=args.port, code_server_port=args.code_server_port,
        postgres_port=args.postgres_port, max_concurrent_runs=args.max_runs, warehouse=args.warehouse,
        storage=args.storage, landing=str(Path(args.landing).resolve()) if args.landing else "",
        sources=sources_folder(args.sources) if args.sources else "",
        worker_retention_s=args.worker_retention, smtp=args.smtp, secret_envs=list(args.secret_env),
    )


def cmd_deploy_up(args: argparse.Namespace) -> int:
    from nb_assets.deploy.stack import up

    settings = deploy_settings(args)
    settings = up(settings, args.project.resolve(), seed=args.seed.resolve() if args.seed else None,
                  restore=args.restore.resolve() if args.restore else None)
    print(f"Dagster UI: http://localhost:{settings.webserver_port}  (DAGSTER_HOME={settings.dagster_home})")
    print(f"runs at once: {settings.max_concurrent_runs}; code image {settings.code_image}; logs in {settings.logs_dir}")
    if settings.sources:
        print(f"declared file sources: {settings.sources} (read-only at {settings.sources_mount})")
    print(f"file drops: {settings.landing_dir}; passwords: {settings.state_dir / 'secrets.json'} (mode 0600)")
    return 0


def cmd_deploy_backup(args: argparse.Namespace) -> int:
    from nb_assets.deploy.backup import backup

    print(f"backup in {backup(args.state.resolve(), args.to.resolve() if args.to else None)}")
    return 0


def cmd_deploy_rotate(args: argparse.Namespace) -> int:
    from nb_assets.deploy.operate import rotate

    print("\n".join(rotate(args.state.resolve())))
    print("restart the deployment to hand them over: nb-assets deploy down, then nb-assets deploy up (same options)")
    return 0


def cmd_deploy_down(args: argparse.Namespace) -> int:
    from nb_assets.deploy.stack import down

    state = args.state.resolve()
    done = down(state, purge=args.purge)
    print("\n".join(done) if done else f"nothing to stop: no deployment runs from {state}")
    return 0
