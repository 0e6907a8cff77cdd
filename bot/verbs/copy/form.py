"""The request form's fields for ``copy`` (one target; several are ``distribute``'s form)."""

from bot.verbs.form_fields import AMI, REGION, SOURCE, Field, FormAnswers, VerbForm, source_words, quoted

TARGET = Field("target", "Target account", "account", required=True, missing="Choose the account the copy goes into.")
TARGET_REGION = Field("target_region", "Target region", "region", placeholder="Same as the source")
KMS = Field("kms", "KMS key in the target", "text", placeholder="alias/<name>, a key id or ARN; default: the account's key", max_length=2048)
NAME = Field("name", "Name of the copy", "text", placeholder="3 to 128 characters", max_length=128)
VERIFY = Field("copy_options", "Options", "flags", choices=(("verify", "Test a launch from the target (verify)"),))


def copy_option_words(a: FormAnswers, flags: str = VERIFY.id) -> list[str]:
    """``kms``, ``name`` and ``verify`` (ticked in the checkboxes ``flags``), as copy and
    distribute write them."""
    out = ["kms", a.get(KMS.id)] if a.get(KMS.id) else []
    if a.get(NAME.id):
        out += ["name", quoted(a.get(NAME.id))]
    return out + (["verify"] if a.has(flags, "verify") else [])


def words(a: FormAnswers) -> list[str]:
    """``<ami> from … to <acct[:region]> [kms …] [name "…"] [verify]``."""
    target = a.get(TARGET.id)
    to = ["to", target + (f":{a.get(TARGET_REGION.id)}" if a.get(TARGET_REGION.id) else "")] if target else []
    return [a.get(AMI.id) or "", *source_words(a), *to, *copy_option_words(a)]


FORM = VerbForm((AMI, SOURCE, REGION, TARGET, TARGET_REGION, KMS, NAME, VERIFY), words)
