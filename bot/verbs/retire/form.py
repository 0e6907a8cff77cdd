"""The request form's fields for ``retire``."""

from bot.verbs.form_fields import AMI, REGION, SOURCE, Field, FormAnswers, VerbForm, source_words

MODE = Field("mode", "What to do", "choice", required=True, missing="Choose what to do with the AMI.", choices=(
    ("deprecate", "Deprecate (hidden from listings)"), ("disable", "Disable (no new launches)"), ("deregister", "Deregister (gone)")))
DATE = Field("date", "Deprecate on", "date", hint="Deprecate only; none: when approved.")
OPTIONS = Field("retire_options", "Options", "flags", choices=(("with-copies", "With every copy amibot made of it"),))


def words(a: FormAnswers) -> list[str]:
    """``<ami> from … <mode> [<date>] [with-copies]``."""
    out = [a.get(AMI.id) or "", *source_words(a), a.get(MODE.id) or ""]
    if a.get(DATE.id):
        out.append(a.get(DATE.id))
    return out + (["with-copies"] if a.has(OPTIONS.id, "with-copies") else [])


FORM = VerbForm((AMI, SOURCE, REGION, MODE, DATE, OPTIONS), words)
