"""The ``amibot`` command line (wiring).

  amibot serve [--host H] [--port P] [--socket-mode] [--sandbox] [--config PATH]
  amibot demo
  amibot check-config [--config PATH]
  amibot iam-policy [--config PATH] [--without-migrate]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading

from bot.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="amibot", description="Slack ChatOps for Amazon Machine Images.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot (HTTP on /slack/events, or Socket Mode)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--socket-mode", action="store_true", help="connect with Socket Mode (needs SLACK_APP_TOKEN)")
    serve.add_argument("--sandbox", action="store_true", help="use the embedded sandbox AWS (moto) instead of real AWS")
    serve.add_argument("--config", help="TOML config (default: $AMIBOT_CONFIG, else ./amibot.toml)")
    sub.add_parser("demo", help="offline rehearsal on the sandbox; exits 0 if every step happened")
    check = sub.add_parser("check-config", help="validate the configuration and exit")
    check.add_argument("--config")
    iam = sub.add_parser("iam-policy", help="print the IAM policies for the bot's role and the member-account roles")
    iam.add_argument("--config", help="use the role ARNs of this config (default: a generic policy)")
    iam.add_argument("--without-migrate", action="store_true", help="leave out what only migrate needs (CreateImage, iam:PassRole)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("AMIBOT_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        if args.command == "demo":
            from offline.demo import run_demo

            return run_demo()
        if args.command == "iam-policy":
            from aws.iam import render
            from bot.config import load_config

            roles = [a.role_arn for a in load_config(args.config).accounts.values() if a.role_arn] if args.config else []
            print(render(roles, migrate=not args.without_migrate), end="")
            return 0
        if args.command == "check-config":
            from bot.config import load_config

            config = load_config(args.config)
            print(f"config OK: {len(config.accounts)} accounts ({', '.join(config.accounts)})")
            return 0
        return _serve(args)
    except ConfigError as error:
        print(f"amibot: {error.user_message()}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from bot.app import Amibot
    from bot.config import load_config, require_slack

    sandbox = None
    if args.sandbox:
        from offline.sandbox import Sandbox
        from offline import rehearsal

        sandbox = Sandbox(rehearsal.REGION)
        sandbox.start()
        db = os.environ.get("AMIBOT_DB") or os.path.join(tempfile.mkdtemp(prefix="amibot-"), "amibot.db")
        config = load_config(args.config) if args.config else rehearsal.sandbox_config(db)
        world = rehearsal.seed(sandbox)
        rehearsal.enforce_generated_policies(sandbox, config)
        logging.getLogger("amibot").info(
            "sandbox AWS: prod=%s dev=%s; AMIs: %s (CMK), %s (aws/ebs), %s (unencrypted)",
            rehearsal.PROD, rehearsal.DEV, world.encrypted_image, world.aws_managed_image, world.plain_image,
        )
    else:
        config = load_config(args.config)
    require_slack(config, socket_mode=args.socket_mode)
    bot = Amibot(config)
    bot.start()

    def shutdown(signum, frame):  # SIGTERM/SIGINT: stop taking work, let the current step finish
        logging.getLogger("amibot").info("signal %s: finishing current steps, then exiting", signum)
        threading.Thread(target=_stop_and_exit, name="amibot-shutdown").start()

    def _stop_and_exit():
        bot.stop()
        if sandbox:
            sandbox.stop()
        os._exit(0)

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if args.socket_mode:
        bot.serve_socket_mode()
    else:
        bot.serve_http(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
