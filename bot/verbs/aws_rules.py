"""AMIs AWS will not share or copy, refused before anyone is asked.

Each rule names the AWS documentation it follows (also listed in docs/aws-rules.md)
and the fix. The same words are in ``aws.errors.KNOWN`` for when AWS says it after
approval (the image changed in between), and the sandbox refuses the same thing.
"""

from __future__ import annotations

from datetime import datetime, timezone

from aws.account_facts import ALLOWED_IMAGES
from aws.actions import ImageFacts, allowed_images
from aws.actions.inspect import AllowedImages
from aws.reads import Pending
from bot.config import AccountConfig
from bot.errors import PreflightError
from bot.verbs.common import PlanningContext, check_source_image, preflight_read

COPY_AMI_DOC = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/CopyingAMIs.html"
ARCHIVE_DOC = "https://docs.aws.amazon.com/ebs/latest/userguide/snapshot-archive.html"
SHARE_LIMIT_DOC = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html"
DEPRECATE_DOC = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ami-deprecate.html"
ALLOWED_AMIS_DOC = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-allowed-amis.html"

# AWS: an AMI can be shared with at most 1,000 entities (accounts, organizations and
# OUs; an organization or OU counts as one).
MAX_SHARING_ENTITIES = 1000


def _entity(permission: dict[str, str]) -> str | None:
    return permission.get("UserId") or permission.get("OrganizationArn") or permission.get("OrganizationalUnitArn")


def check_copy_rules(facts: ImageFacts, source: AccountConfig, region: str, *, cross_account: bool, adding: list[str]) -> None:
    """What AWS refuses for a copy amibot would make (always encrypted; across
    accounts when ``cross_account``, with a temporary share to ``adding``)."""
    where = f"`{source.alias}` ({source.id}) {region}"
    if cross_account and facts.billing_coded():
        what = ", ".join(facts.product_codes) if facts.product_codes else f"{facts.platform_details}, UsageOperation {facts.usage_operation}"
        raise PreflightError(
            f"{facts.image_id} carries billing product codes ({what}). AWS: \"Images with EC2 BillingProduct codes cannot be "
            "copied to another AWS account.\"",
            fix=(
                f"Share it instead (`/ami share {facts.image_id} from {source.alias}:{region} to <account>`): the target launches it "
                f"and the billing stays with the product; or launch an instance from it in the target account and create an image there. "
                f"AWS documentation: Copy an Amazon EC2 AMI, {COPY_AMI_DOC}"
            ),
        )
    if facts.root_device_type == "instance-store":
        raise PreflightError(
            f"{facts.image_id} in {where} is instance store-backed (S3): AWS cannot encrypt it (amibot encrypts every copy)"
            + (" nor copy it to another account." if cross_account else "."),
            fix=(
                "Launch an instance from it, create an EBS-backed image from the instance (CreateImage, or `/ami migrate`), and copy that. "
                f"AWS documentation: Copy an Amazon EC2 AMI, {COPY_AMI_DOC}"
            ),
        )
    check_archived(facts, "copied")
    if cross_account:
        check_share_limit(facts, adding)


def check_share_rules(facts: ImageFacts, *, adding: list[str]) -> None:
    """What AWS refuses for a share to the entities ``adding``."""
    check_archived(facts, "shared (nobody could launch it)")
    check_share_limit(facts, adding)


def check_archived(facts: ImageFacts, done: str) -> None:
    """Snapshots in the archive tier cannot be used until restored."""
    if facts.archived_snapshots:
        snaps = ", ".join(facts.archived_snapshots)
        raise PreflightError(
            f"Snapshots {snaps} of {facts.image_id} are in the archive tier: AWS cannot use them until they are restored, "
            f"so the AMI cannot be {done}.",
            fix=(
                "Restore them, e.g. "
                + "; ".join(f"`aws ec2 restore-snapshot-tier --snapshot-id {s} --temporary-restore-days 7`" for s in facts.archived_snapshots)
                + " (or `--permanent-restore`); when `aws ec2 describe-snapshot-tier-status` shows them restored, ask again. "
                f"AWS documentation: Archive Amazon EBS snapshots, {ARCHIVE_DOC}"
            ),
        )


def check_share_limit(facts: ImageFacts, adding: list[str]) -> None:
    """At most 1,000 sharing entities per AMI (what is already there counts)."""
    present = {e for e in (_entity(p) for p in facts.launch_permissions) if e}
    new = [a for a in adding if a not in present]
    if new and len(present) + len(new) > MAX_SHARING_ENTITIES:
        raise PreflightError(
            f"{facts.image_id} is already shared with {len(present)} accounts, organizations or OUs; adding {len(new)} would pass "
            f"AWS's maximum of {MAX_SHARING_ENTITIES} per AMI.",
            fix=(
                "Remove shares nobody uses (`/ami unshare`), or share with an organization or OU, which counts as one. "
                f"AWS documentation: Share an AMI with specific AWS accounts, {SHARE_LIMIT_DOC}"
            ),
        )


def warnings(facts: ImageFacts, now: datetime | None = None) -> list[str]:
    """Lines shown in the plan that do not stop the request (a deprecated AMI)."""
    out = []
    if facts.deprecation_time:
        try:
            when = datetime.fromisoformat(facts.deprecation_time.replace("Z", "+00:00"))
        except ValueError:
            when = None
        if when is not None and when <= (now or datetime.now(timezone.utc)):
            out.append(
                f"WARNING: {facts.image_id} was deprecated on {facts.deprecation_time[:10]}: its owner marked it out of date "
                f"(it still works; describe calls hide it unless asked for by id). AWS documentation: Deprecate an AMI, {DEPRECATE_DOC}"
            )
    return out


def check_shared_in(facts: ImageFacts, source: AccountConfig, region: str, target: AccountConfig | None) -> None:
    """An AMI owned by another account and shared with the source: the source copies
    it into itself; it cannot hand it on to a third account (only the owner can
    share it)."""
    where = f"`{source.alias}` ({source.id})"
    if target is not None and target.id != source.id:
        raise PreflightError(
            f"{facts.image_id} is owned by account {facts.owner_id} and shared with {where}; only its owner can share it with "
            f"`{target.alias}`, so amibot cannot copy it there directly.",
            fix=(
                f"Copy it into {source.alias} first (`/ami copy {facts.image_id} from {source.alias}:{region} to {source.alias}[:<region>]`), "
                f"then copy that copy to `{target.alias}`."
            ),
        )
    unusable = [k.arn for k in facts.keys if k.state.startswith("not usable")]
    if unusable:
        raise PreflightError(
            f"{facts.image_id} is owned by account {facts.owner_id}; its snapshots are encrypted with that account's key "
            f"{unusable[0]}, which {where} may not use: the copy would fail.",
            fix=f"Ask the owner of {facts.owner_id} for a KMS grant to {source.id} on that key (Decrypt, ReEncryptFrom, DescribeKey, CreateGrant), then ask again.",
        )
    if not facts.snapshots_readable:
        raise PreflightError(
            f"{facts.image_id} is owned by account {facts.owner_id}, which shared it with {where} for launching only: "
            "AWS copies an AMI of another account only with snapshot permission (createVolumePermission) on its snapshots.",
            fix=f"Ask the owner of {facts.owner_id} to share it with `allow-copy` (snapshot permission for {source.id}), then ask again.",
        )


def check_copyable(facts: ImageFacts, source: AccountConfig, region: str, cross_account: bool, target: AccountConfig | None = None) -> None:
    """Refuse, before anyone is asked, what AWS would refuse or fail later. Within
    the account an ``aws/ebs`` image may be copied: that is the documented way out.
    An AMI another account shared with the source may be copied into the source
    itself (a normal CopyImage: the source account is the copier); AWS then treats
    it as a copy from another account (billing codes, snapshot permission, key)."""
    shared_in = facts.owner_id != source.id
    if shared_in:
        check_shared_in(facts, source, region, target)
        checked = ImageFacts(**{**facts.__dict__, "owner_id": source.id})
        check_source_image(checked, source, region, verb="copy", done="copied", aws_managed_ok=False)
        check_copy_rules(facts, source, region, cross_account=True, adding=[])
        return
    check_source_image(facts, source, region, verb="copy", done="copied", aws_managed_ok=not cross_account)
    check_copy_rules(facts, source, region, cross_account=cross_account, adding=[target.id] if cross_account and target else [])


def start_allowed_images(ctx: PlanningContext, owner: AccountConfig, viewers: list[tuple[AccountConfig, str]]) -> dict[tuple[str, str], tuple[AccountConfig, Pending[AllowedImages]]]:
    """Start reading the Allowed AMIs settings of each ``(account, region)`` that must
    see ``owner``'s AMI (once each; not the owner's own), all at once; an
    account-level fact, cached for a minute (``aws.account_facts``)."""
    started: dict[tuple[str, str], tuple[AccountConfig, Pending[AllowedImages]]] = {}
    for viewer, region in viewers:
        if viewer.id == owner.id or (viewer.id, region) in started:
            continue
        read = (lambda viewer=viewer, region=region: ctx.account_fact(
            ALLOWED_IMAGES, viewer.id, region, lambda: allowed_images(ctx.sessions, viewer.id, region, ctx.tag)))
        started[(viewer.id, region)] = (viewer, ctx.reads.start(f"allowed images {viewer.id} {region}", read))
    return started


def check_allowed_images(ctx: PlanningContext, image: str, owner: AccountConfig, viewers: list[tuple[AccountConfig, str]],
                         started: dict[tuple[str, str], tuple[AccountConfig, Pending[AllowedImages]]] | None = None) -> list[str]:
    """Allowed AMIs, read from each ``(account, region)`` that must see ``image`` of
    ``owner`` (a share's targets; a copy's target in the source region, where it
    copies from; a copy's share-with accounts). Where it is ``enabled`` and no
    criterion's ImageProviders names the owner, the AMI is invisible there: refused
    before anyone is asked. ``audit-mode``, or a match only through criteria with
    further conditions: a ``WARNING:`` line (returned). A failed read refuses.
    ``started``: the reads :func:`start_allowed_images` began earlier for the same viewers."""
    started = start_allowed_images(ctx, owner, viewers) if started is None else started
    lines = []
    for (viewer_id, region), (viewer, pending) in started.items():
        settings = preflight_read(
            f"Could not read the Allowed AMIs settings of `{viewer.alias}` ({viewer.id}) in {region}",
            pending.result,
            fix="Check the role of that account (`amibot iam-policy` allows ec2:GetAllowedImagesSettings).",
        )
        if settings.state == "disabled":
            continue
        match = settings.match(owner.id)
        add = (
            f"ask `{viewer.alias}`'s owners to add `{owner.id}` ({owner.alias}) to the ImageProviders of their Allowed AMIs criteria in "
            f"{region} (`aws ec2 replace-image-criteria-in-allowed-images-settings`). AWS documentation: Control the discovery and use of "
            f"AMIs in Amazon EC2 with Allowed AMIs, {ALLOWED_AMIS_DOC}"
        )
        if settings.state == "enabled" and match == "no":
            raise PreflightError(
                f"`{viewer.alias}` ({viewer.id}) has Allowed AMIs enabled in {region} and no criterion allows AMIs of `{owner.alias}` "
                f"({owner.id}): {image} would be invisible there, so the request would fail after approval.",
                fix=f"Before asking again, {add}",
            )
        if match == "yes":
            continue
        why = ("Allowed AMIs is in audit-mode there and would hide it once enabled" if settings.state == "audit-mode"
               else "only Allowed AMIs criteria with further conditions (names, dates) name its owner: it may be hidden")
        lines.append(f"WARNING: {image} of `{owner.alias}` in `{viewer.alias}` {region}: {why}; {add}")
    return lines
