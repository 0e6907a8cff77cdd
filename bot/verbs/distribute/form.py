"""The request form's fields for ``distribute``: every chosen account in every chosen region."""

from bot.verbs.copy.form import KMS, NAME, copy_option_words
from bot.verbs.form_fields import AMI, REGION, SOURCE, Field, FormAnswers, VerbForm, source_words

TARGETS = Field("targets", "Target accounts", "accounts", required=True, missing="Choose the accounts the copies go into.")
TARGET_REGIONS = Field("target_regions", "Target regions", "regions", hint="A copy in each chosen account and region; none: the source region.")
SHARE_WITH = Field("share_with", "Share each copy with", "accounts")
LAUNCH_TEMPLATE = Field("update_lt", "Launch template to update", "text", placeholder="lt-0123456789abcdef0@dev:us-east-1", max_length=120,
                        hint="It gets a new version with the copy made in that account and region.")
OPTIONS = Field("distribute_options", "Options", "flags", choices=(("verify", "Test a launch from each target (verify)"),
                                                       ("default", "Make the template's new version its default")))


def words(a: FormAnswers) -> list[str]:
    """``<ami> from … to <acct:region>,… [kms …] [name "…"] [share-with …] [update-lt … [default]] [verify]``."""
    regions = a.many(TARGET_REGIONS.id)
    targets = [f"{acct}:{r}" for acct in a.many(TARGETS.id) for r in regions] if regions else list(a.many(TARGETS.id))
    out = [a.get(AMI.id) or "", *source_words(a), *(["to", ",".join(targets)] if targets else []), *copy_option_words(a, OPTIONS.id)]
    if a.many(SHARE_WITH.id):
        out += ["share-with", ",".join(a.many(SHARE_WITH.id))]
    if a.get(LAUNCH_TEMPLATE.id):
        out += ["update-lt", a.get(LAUNCH_TEMPLATE.id), *(["default"] if a.has(OPTIONS.id, "default") else [])]
    return out


def check(a: FormAnswers) -> dict[str, str]:
    """A default version needs a launch template."""
    if a.has(OPTIONS.id, "default") and not a.get(LAUNCH_TEMPLATE.id):
        return {OPTIONS.id: "A default version needs a launch template: name it above, or untick this."}
    return {}


FORM = VerbForm((AMI, SOURCE, REGION, TARGETS, TARGET_REGIONS, KMS, NAME, SHARE_WITH, LAUNCH_TEMPLATE, OPTIONS), words, check)
