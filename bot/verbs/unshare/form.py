"""The request form's fields for ``unshare`` (``bot.verbs.form_fields``)."""

from bot.verbs.form_fields import AMI, REGION, SHARE_TARGETS, SOURCE, TARGET_OTHER, FormAnswers, VerbForm, one_share_target, share_target_words, source_words


def words(a: FormAnswers) -> list[str]:
    """``<ami> from … to …``."""
    return [a.get(AMI.id) or "", *source_words(a), *share_target_words(a)]


FORM = VerbForm((AMI, SOURCE, REGION, SHARE_TARGETS, TARGET_OTHER), words, one_share_target)
