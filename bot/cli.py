"""The ``amibot`` command line (wiring).

  amibot serve [--host H] [--port P] [--workers N] [--admin-port N [--admin-host H]] [--socket-mode] [--sandbox] [--config PATH]
  amibot work [--admin-port N [--admin-host H]] [--config PATH]
  amibot demo
  amibot check-config [--config PATH]
  amibot iam-policy [--config PATH] [--without-migrate] [--format text|cloudformation] [--out DIR]
  amibot migrate-store --from sqlite:PATH --to postgresql://… [--overwrite]
  amibot doctor [--config PATH]
  amibot audit [--since DATE|DURATION] [--format jsonl|csv] [--out PATH]
  amibot backup PATH
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import tempfile
import threading

from bot.cli_store import STORE_VERBS
from bot.cli_store import add_store_verbs as _add_store_verbs
from bot.errors import ConfigError


# How much lower the CPU priority of serve's worker processes is than the front's.
WORKER_NICE = 10
# Jobs a worker process runs at once (more processes, rather than more threads, is
# how the work scales: threads of one process share its GIL).
WORKER_THREADS = 2


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``amibot`` command line."""
    parser = argparse.ArgumentParser(prog="amibot", description="Slack ChatOps for Amazon Machine Images.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the bot (HTTP on /slack/events, or Socket Mode)")
    # Loopback unless told otherwise: exposing the endpoint is a decision (the Docker
    # image says --host 0.0.0.0 explicitly).
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all interfaces)")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--admin-port", type=int, help="serve /metrics and the detailed /healthz on this port (off unless given)")
    serve.add_argument("--admin-host", default="127.0.0.1", help="address of the admin listener (default 127.0.0.1)")
    serve.add_argument("--socket-mode", action="store_true", help="connect with Socket Mode (needs SLACK_APP_TOKEN)")
    serve.add_argument("--sandbox", action="store_true", help="use the embedded sandbox AWS (moto) instead of real AWS")
    serve.add_argument("--config", help="TOML config (default: $AMIBOT_CONFIG, else ./amibot.toml)")
    serve.add_argument("--workers", type=_count, default=None, metavar="N",
                       help="worker processes doing the AWS work beside the HTTP front (default 2 over HTTP; 0: all in this process)")
    work = sub.add_parser("work", help="a worker process: preflights, plans, duties and Slack messages, from the shared store")
    work.add_argument("--config", help="TOML config (default: $AMIBOT_CONFIG, else ./amibot.toml)")
    work.add_argument("--admin-port", type=int, help="serve /metrics and the detailed /healthz on this port (off unless given)")
    work.add_argument("--admin-host", default="127.0.0.1", help="address of the admin listener (default 127.0.0.1)")
    work.add_argument("--threads", type=_count, default=WORKER_THREADS, help=f"jobs run at once by this process (default {WORKER_THREADS})")
    work.add_argument("--nice", type=_count, default=0, help="lower this process's CPU priority by N (serve --workers starts its workers with 10)")
    work.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # set by serve --workers: stop when it is gone
    sub.add_parser("demo", help="offline rehearsal on the sandbox; exits 0 if every step happened")
    check = sub.add_parser("check-config", help="validate the configuration and exit")
    check.add_argument("--config")
    iam = sub.add_parser("iam-policy", help="print the IAM policies for the bot's role and the member-account roles")
    iam.add_argument("--config", help="use the role ARNs of this config (default: a generic policy)")
    move = sub.add_parser("migrate-store", help="copy every request, step, approval, audit entry and outbox message to another database (stop the bot first)")
    move.add_argument("--from", dest="source", required=True, metavar="sqlite:PATH", help="the current database (sqlite:PATH, or a postgresql:// URL)")
    move.add_argument("--to", dest="target", required=True, metavar="postgresql://…", help="the new database (migrated on the way; must be empty)")
    move.add_argument("--overwrite", action="store_true", help="replace what the target holds instead of refusing")
    iam.add_argument("--format", choices=("text", "cloudformation"), default="text",
                     help="cloudformation: write the deployable templates (deploy/cloudformation/) instead")
    iam.add_argument("--out", default="deploy/cloudformation", help="directory for --format cloudformation")
    doctor = sub.add_parser("doctor", help="check the installation (config, Slack, AWS roles and keys, store); exit 1 if a check fails")
    doctor.add_argument("--config", help="TOML config (default: $AMIBOT_CONFIG, else ./amibot.toml)")
    _add_store_verbs(sub)
    iam.add_argument("--without-migrate", action="store_true", help="leave out the migrate add-on policy (CreateImage, iam:PassRole)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``amibot`` verb; the exit status."""
    args = build_parser().parse_args(argv)
    from bot import logs

    try:
        # JSON lines for the long-running server, text for the commands people read.
        logs.configure(default_format="json" if args.command in ("serve", "work") else "text", secrets=logs.secrets_from_environment())
    except ValueError as error:
        print(f"amibot: {error}", file=sys.stderr)
        return 2
    try:
        if args.command == "demo":
            from offline.demo import run_demo

            return run_demo()
        if args.command == "doctor":
            return _doctor(args)
        if args.command in STORE_VERBS:
            return STORE_VERBS[args.command](args)
        if args.command == "iam-policy" and args.format == "cloudformation":
            from aws.cloudformation import write_all

            for path in write_all(args.out):
                print(path)
            return 0
        if args.command == "iam-policy":
            from aws.iam import configured_pass_roles, render
            from bot.config import load_config

            accounts = list(load_config(args.config).accounts.values()) if args.config else []
            roles = [a.role_arn for a in accounts if a.role_arn]
            retire = {a.alias: a.retire_tag for a in accounts if a.retire}
            migrating = [a for a in accounts if a.migrate]
            migrate = False if args.without_migrate else ([a.alias for a in migrating] or False) if accounts else True
            print(render(roles, migrate=migrate, pass_roles=configured_pass_roles(migrating), accounts=[a.id for a in accounts], retire=retire), end="")
            return 0
        if args.command == "check-config":
            from bot.config import load_config

            config = load_config(args.config)
            print(f"config OK: {len(config.accounts)} accounts ({', '.join(config.accounts)})")
            return 0
        if args.command == "migrate-store":
            return _migrate_store(args)
        if args.command == "work":
            return _work(args)
        return _serve(args)
    except ConfigError as error:
        print(f"amibot: {error.user_message()}", file=sys.stderr)
        return 2


def _migrate_store(args: argparse.Namespace) -> int:
    from bot.store import open_store
    from bot.store.transfer import StoreTransferError, check_target, open_source, transfer_store

    try:
        check_target(args.target)
        source = open_source(args.source)
        target = open_store(args.target)
        copied = transfer_store(source, target, overwrite=args.overwrite)
    except StoreTransferError as error:
        print(f"amibot: {error.user_message()}", file=sys.stderr)
        return 2
    except Exception as error:  # e.g. psycopg.OperationalError: the server cannot be reached
        if not type(error).__module__.startswith(("psycopg", "sqlite3")):
            raise
        print(f"amibot: the database refused: {str(error).strip().splitlines()[0]}\nCheck the URL, that the server runs and the user may connect.", file=sys.stderr)
        return 2
    print(f"copied {source.backend.describe()} → {target.backend.describe()}:")
    for table in copied:
        print(f"  {table.table:<12} {table.source_rows:>7} → {table.target_rows:<7} {'ok' if table.verified else 'MISMATCH'}")
    if not all(t.verified for t in copied):
        print("amibot: the counts differ; do not start the bot on the new database.", file=sys.stderr)
        return 1
    print("verified: every table has the same number of rows. Point AMIBOT_DB at the new database and start the bot.")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from bot.app import aws_sessions, slack_client
    from bot.doctor import failed, render_table, run_doctor

    rows = run_doctor(args.config, slack_client=slack_client, sessions=lambda config: aws_sessions(config, max_attempts=2))
    print(render_table(rows), end="")
    return 1 if failed(rows) else 0


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
    workers = serve_workers(args)
    if workers and sandbox:
        print("amibot: --sandbox runs the sandbox AWS inside this process, which worker processes cannot reach; use --workers 0.", file=sys.stderr)
        sandbox.stop()
        return 2
    bot = Amibot(config, role="front" if workers else "bot")
    bot.start()
    children = None
    if workers:
        from bot.processes import WorkerProcesses

        # Acks first: the workers run at a lower CPU priority than the front, so an ack
        # does not queue behind preflights for the CPU (on SQLite the front writes its
        # own inbox, never waiting for the workers' write lock: bot.store.inbox).
        children = WorkerProcesses(workers, config=args.config, extra=["--nice", str(WORKER_NICE)])
        children.start()
        # What start-up made lives as long as the process: out of the collector's full
        # passes (15-30 ms each with the GIL held, on an ack's path otherwise).
        gc.collect()
        gc.freeze()
    signalled = _on_signals(bot, children, sandbox)
    if args.admin_port is not None:
        bot.start_admin_http(args.admin_host, args.admin_port)
    if args.socket_mode:
        bot.serve_socket_mode()
    else:
        bot.serve_http(args.host, args.port)
    if signalled.is_set():
        # The server returns as soon as the stop closes it, while the stop (in its own
        # thread) still lets the preflights and steps already taken finish, then ends
        # the process. Returning here would start the interpreter's shutdown, after which
        # no thread pool takes new work: a preflight's parallel reads failed and an
        # acknowledged request was lost (a rolling restart under load showed it).
        threading.Event().wait()
    return 0


def serve_workers(args: argparse.Namespace) -> int:
    """How many worker processes ``serve`` starts: ``--workers``, else 2 over HTTP and
    none with Socket Mode or the in-process sandbox."""
    if args.workers is not None:
        return args.workers
    return 0 if args.socket_mode or args.sandbox else 2


def _on_signals(bot, children=None, sandbox=None) -> threading.Event:
    """SIGTERM/SIGINT: stop taking work, let the current steps finish (the workers'
    too), then exit. Returns the event set when a signal started the stop."""
    signalled = threading.Event()

    def _stop_and_exit():
        if children is not None:
            children.stop()
        bot.stop()
        if sandbox:
            sandbox.stop()
        os._exit(0)

    def shutdown(signum, frame):
        logging.getLogger("amibot").info("signal %s: finishing current steps, then exiting", signum)
        if not signalled.is_set():
            signalled.set()
            threading.Thread(target=_stop_and_exit, name="amibot-shutdown").start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    return signalled


def _work(args: argparse.Namespace) -> int:
    """``amibot work``: a worker process on the shared store, until SIGTERM (or, with
    ``--parent``, until the front that started it is gone)."""
    from bot.app import Amibot
    from bot.config import load_config, require_slack
    from bot.processes import exit_with_parent

    if args.nice:
        os.nice(args.nice)
    # Hand the GIL over sooner (5 ms by default): a thread holding the store's write
    # lock gets to commit sooner while others parse AWS answers.
    sys.setswitchinterval(0.001)
    config = load_config(args.config)
    require_slack(config, socket_mode=False)
    bot = Amibot(config, role="worker", job_threads=max(1, args.threads))
    bot.start()
    _on_signals(bot)
    if args.admin_port is not None:
        bot.start_admin_http(args.admin_host, args.admin_port)
    if args.parent:
        exit_with_parent(args.parent, lambda: os.kill(os.getpid(), signal.SIGTERM))
    logging.getLogger("amibot").info("amibot worker %s running", bot.leases.holder)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main())
