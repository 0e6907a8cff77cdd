"""The request form's fields for ``tag``: one ``key=value`` a line."""

from bot.verbs.form_fields import AMI, REGION, SOURCE, Field, FormAnswers, VerbForm, quoted, source_words

TAGS = Field("tags", "Tags", "lines", required=True, placeholder="One key=value a line, e.g. app=payments", max_length=3000,
             missing="Write at least one tag: key=value, one a line.")


def words(a: FormAnswers) -> list[str]:
    """``<ami> from … "key=value" …`` (each line one quoted word, so values may hold spaces)."""
    return [a.get(AMI.id) or "", *source_words(a), *(quoted(line) for line in a.many(TAGS.id))]


FORM = VerbForm((AMI, SOURCE, REGION, TAGS), words)
