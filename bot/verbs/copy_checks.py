"""The checks every operation that copies an AMI runs before anyone is asked
(``/ami copy``, ``/ami distribute``): one place, so no operation can skip one.

- the source: AWS's rules for copying it (ownership, an AMI shared into the source,
  billing codes, ``aws/ebs``, its key's state) and, for another account, the source
  key's CreateGrant DryRun (``key_checks.check_grants_possible``);
- Allowed AMIs of each other account, in the source region (it copies from there);
- each destination: the copies already in flight there (AWS allows
  ``MAX_COPIES_IN_FLIGHT`` per account and region) and, for a given ``name``, that
  no AMI there has it (AMI names are unique per account and region).
"""

from __future__ import annotations

from typing import Any, Callable

from aws.actions import ImageFacts
from aws.actions.copy import MAX_COPIES_IN_FLIGHT, DestinationKey, copies_in_flight, image_named
from bot.config import AccountConfig
from bot.errors import PreflightError
from bot.verbs.aws_rules import check_allowed_images, check_copyable
from bot.verbs.common import PlanningContext, preflight_read
from bot.verbs.key_checks import check_grants_possible


def check_copy_source(ctx: PlanningContext, facts: ImageFacts, source: AccountConfig, region: str, targets: list[AccountConfig],
                      allowed: dict[tuple[str, str], Any] | None = None) -> list[str]:
    """What AWS would refuse of copying ``facts`` from ``source`` to each of
    ``targets``; returns the warning lines (Allowed AMIs in audit-mode). ``allowed``:
    the Allowed AMIs reads already started (``aws_rules.start_allowed_images``) for
    the other accounts in ``region``."""
    for target in targets:
        check_copyable(facts, source, region, target.id != source.id, target)
    if not targets:
        check_copyable(facts, source, region, False)
    others = [t for t in targets if t.id != source.id]
    if others:
        check_grants_possible(ctx, facts, source, region, others)
    # Another account copies from the source region, through a temporary share: the
    # AMI must be visible to it there (Allowed AMIs).
    return check_allowed_images(ctx, facts.image_id, source, [(t, region) for t in others], started=allowed)


def check_copy_destination(ctx: PlanningContext, target: AccountConfig, region: str, name: str | None) -> int:
    """Room for one more copy in ``target`` ``region``, and ``name`` free there.
    Returns how many copies are in flight there."""
    return start_copy_destination(ctx, target, region, name)()


def start_copy_destination(ctx: PlanningContext, target: AccountConfig, region: str, name: str | None) -> Callable[[], int]:
    """Start both reads of :func:`check_copy_destination` at once; the returned call
    checks them in its order (room first, then the name) and gives the count."""
    counting = ctx.reads.start("copies in flight", lambda: copies_in_flight(ctx.sessions, target.id, region, ctx.tag))
    naming = ctx.reads.start("image named", lambda: image_named(ctx.sessions, target.id, region, name, ctx.tag)) if name else None

    def check() -> int:
        in_flight = preflight_read(
            f"Could not count the copies in flight in `{target.alias}` {region}",
            counting.result,
            fix="Check the role of that account (`amibot iam-policy`).",
        )
        if in_flight >= MAX_COPIES_IN_FLIGHT:
            raise PreflightError(
                f"`{target.alias}` already has {in_flight} images pending in {region}; AWS allows {MAX_COPIES_IN_FLIGHT} concurrent copies per region.",
                fix="Wait for some of them to finish, then ask again.",
            )
        if naming is not None:
            existing = preflight_read(
                f"Could not look up AMI names in `{target.alias}` {region}",
                naming.result,
                fix="Check the role of that account (`amibot iam-policy`).",
            )
            if existing:
                raise PreflightError(
                    f"`{target.alias}` already has an AMI named `{name}` in {region} ({existing}); AMI names are unique per account and region.",
                    fix="Pick another `name`, or leave it out (amibot then names the copy `<source name>-copy-<request id>`).",
                )
        return in_flight

    return check


def check_shareable_copy(key: DestinationKey | None, target: AccountConfig, region: str) -> None:
    """A copy ``share-with`` shares must not be encrypted with the AWS-managed
    ``aws/ebs`` key: AWS never lets anyone share it ("You can't share AMIs that are
    backed by snapshots that are encrypted with the default AWS managed key")."""
    if key is not None and key.manager == "AWS":
        raise PreflightError(
            f"The copy in `{target.alias}` {region} would be encrypted with the AWS-managed key {key.label()}, "
            "which AWS never lets anyone share, so `share-with` would fail after approval.",
            fix=f"Name a customer-managed key of `{target.alias}` in {region} with `kms <key>` "
                f"(or set `accounts.{target.alias}.kms_keys`), or leave out `share-with`.",
        )
