"""The request form's fields for ``migrate``."""

from bot.verbs.form_fields import REGION, SOURCE, Field, FormAnswers, VerbForm, source_words

INSTANCE = Field("instance", "Instance", "text", required=True, placeholder="i-0123456789abcdef0", max_length=19, missing="Type the instance id.")
ZONE = Field("zone", "Availability Zone", "text", required=True, placeholder="e.g. us-east-1b", max_length=30,
             missing="Type the Availability Zone it moves to.")
SUBNET = Field("subnet", "Subnet in that zone", "text", placeholder="optional: subnet-0123456789abcdef0", max_length=24)
OPTIONS = Field("migrate_options", "Options", "flags", choices=(("no-reboot", "Image it without a reboot (no-reboot)"),))


def words(a: FormAnswers) -> list[str]:
    """``<instance> from … to <zone> [subnet …] [no-reboot]``."""
    out = [a.get(INSTANCE.id) or "", *source_words(a), *(["to", a.get(ZONE.id)] if a.get(ZONE.id) else [])]
    if a.get(SUBNET.id):
        out += ["subnet", a.get(SUBNET.id)]
    return out + (["no-reboot"] if a.has(OPTIONS.id, "no-reboot") else [])


FORM = VerbForm((INSTANCE, SOURCE, REGION, ZONE, SUBNET, OPTIONS), words)
