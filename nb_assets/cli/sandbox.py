"""`nb-assets sandbox build|tag`: the Docker sandbox image."""

from __future__ import annotations

import argparse
from typing import Any, get_args

from nb_assets.sandbox.image import BuildMethod


def add_sandbox_command(sub: Any) -> None:
    sandbox = sub.add_parser("sandbox", help="the Docker sandbox image")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    build = sandbox_sub.add_parser("build", help="build the sandbox image (offline when no registry answers)")
    build.add_argument("--method", choices=get_args(BuildMethod), default="auto")
    build.add_argument("--force", action="store_true", help="rebuild even if the tagged image exists")
    build.set_defaults(func=cmd_sandbox_build)
    tag = sandbox_sub.add_parser("tag", help="print the image tag the current recipe builds")
    tag.set_defaults(func=cmd_sandbox_tag)


def cmd_sandbox_build(args: argparse.Namespace) -> int:
    from nb_assets.sandbox.image import build_image

    print(build_image(method=args.method, force=args.force))
    return 0


def cmd_sandbox_tag(args: argparse.Namespace) -> int:
    from nb_assets.sandbox.image import image_tag

    print(image_tag())
    return 0
