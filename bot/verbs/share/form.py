"""The request form's fields for ``share`` (``bot.verbs.form_fields``)."""

from bot.verbs.form_fields import AMI, REGION, SHARE_TARGETS, SOURCE, TARGET_OTHER, Field, FormAnswers, VerbForm, one_share_target, share_target_words, source_words

# The menu of durations: the grammar's own words (1h to 90d); none chosen: until unshared.
DURATIONS = (("1h", "1 hour"), ("4h", "4 hours"), ("12h", "12 hours"), ("1d", "1 day"), ("2d", "2 days"), ("3d", "3 days"),
             ("7d", "7 days"), ("14d", "14 days"), ("30d", "30 days"), ("90d", "90 days"))
DURATION = Field("duration", "For how long", "choice", choices=DURATIONS, placeholder="Until unshared")
OPTIONS = Field("share_options", "Options", "flags", choices=(("allow-copy", "Targets may copy it (allow-copy)"),
                                                       ("verify", "Test a launch from each target (verify)")))


def words(a: FormAnswers) -> list[str]:
    """``<ami> from … to … [allow-copy] [verify] [for …]``."""
    out = [a.get(AMI.id) or "", *source_words(a), *share_target_words(a)]
    out += [flag for flag, _ in OPTIONS.choices if a.has(OPTIONS.id, flag)]
    if a.get(DURATION.id):
        out += ["for", a.get(DURATION.id)]
    return out


FORM = VerbForm((AMI, SOURCE, REGION, SHARE_TARGETS, TARGET_OTHER, DURATION, OPTIONS), words, one_share_target)
