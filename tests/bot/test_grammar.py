"""The slash grammar: every verb, normalisation, each error message (the properties,
hypothesis-driven, are in test_grammar_properties.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.errors import UsageError
from bot.grammar import (
    USAGE,
    VERBS,
    AccountRef,
    CancelCommand,
    CopyCommand,
    EmptyCommand,
    HelpCommand,
    ListCommand,
    MigrateCommand,
    ShareCommand,
    StatusCommand,
    UnshareCommand,
    is_reserved_word,
    normalise,
    parse_command,
    usage_for,
)

AMI = "ami-0123456789abcdef0"
AMI8 = "ami-0123abcd"
INST = "i-0123456789abcdef0"
OU = "ou-ab12-cd345678"
PROD = AccountRef("prod", None)
PROD_EU = AccountRef("prod", "eu-west-1")


def share(targets=("dev",), *, source=PROD, org=False, ou=None, allow_copy=False, duration=None, image=AMI):
    return ShareCommand(image, source, tuple(targets), org, ou, allow_copy, duration)


def unshare(targets=("dev",), *, source=PROD, org=False, ou=None, image=AMI):
    return UnshareCommand(image, source, tuple(targets), org, ou)


def copy(target=AccountRef("dev", None), *, source=PROD, kms=None, name=None, verify=False, image=AMI):
    return CopyCommand(image, source, target, kms, name, verify)


def migrate(az="eu-west-1b", *, source=PROD_EU, subnet=None, no_reboot=False, instance=INST):
    return MigrateCommand(instance, source, az, subnet, no_reboot)


VALID = [
    # share
    (f"share {AMI} from prod to dev", share()),
    (f"share {AMI8} from prod to dev", share(image=AMI8)),
    (f"share {AMI} from prod:eu-west-1 to dev,staging", share(("dev", "staging"), source=PROD_EU)),
    (f"share {AMI} from prod to dev, staging", share(("dev", "staging"))),
    (f"share {AMI} from prod to dev staging qa", share(("dev", "staging", "qa"))),
    (f"share {AMI} from prod to dev ,staging,", share(("dev", "staging"))),
    (f"share {AMI} from prod to 222222222222", share(("222222222222",))),
    (f"share {AMI} from 111111111111:us-east-2 to dev", share(source=AccountRef("111111111111", "us-east-2"))),
    (f"share {AMI} from 1111-1111-1111 to 2222-2222-2222", share(("222222222222",), source=AccountRef("111111111111"))),
    (f"share {AMI} from prod to org", share((), org=True)),
    (f"share {AMI} from prod to organisation", share((), org=True)),
    (f"share {AMI} from prod to {OU}", share((), ou=OU)),
    (f"share {AMI} from prod to dev allow-copy", share(allow_copy=True)),
    (f"share {AMI} from prod to dev for 12h", share(duration=timedelta(hours=12))),
    (f"share {AMI} from prod to dev for 7d allow-copy", share(allow_copy=True, duration=timedelta(days=7))),
    (f"share {AMI} from prod to dev allow-copy for 90d", share(allow_copy=True, duration=timedelta(days=90))),
    (f"share {AMI} from prod to dev for 1h", share(duration=timedelta(hours=1))),
    (f"share {AMI} from prod to dev for 2160h", share(duration=timedelta(days=90))),
    (f"share {AMI} from prod to dev for 3 days", share(duration=timedelta(days=3))),
    (f"share {AMI} from prod to dev for 2w", share(duration=timedelta(days=14))),
    (f"share {AMI} to dev from prod", share()),
    # unshare
    (f"unshare {AMI} from prod to dev", unshare()),
    (f"unshare {AMI} from prod:eu-west-1 to dev staging", unshare(("dev", "staging"), source=PROD_EU)),
    (f"unshare {AMI} from prod to org", unshare((), org=True)),
    (f"unshare {AMI} from prod to {OU}", unshare((), ou=OU)),
    # copy
    (f"copy {AMI} from prod to dev", copy()),
    (
        f"copy {AMI} from prod:eu-west-1 to dev:us-east-2 kms alias/ami-dev name web-v2 verify",
        copy(AccountRef("dev", "us-east-2"), source=PROD_EU, kms="alias/ami-dev", name="web-v2", verify=True),
    ),
    (f'copy {AMI} from prod to dev name "web server v2"', copy(name="web server v2")),
    (f"copy {AMI} from prod to dev name 'bob's image (1)'", copy(name="bob's image (1)")),
    (f'copy {AMI} from prod to dev name "verify"', copy(name="verify")),
    (f"copy {AMI} from prod to dev verify kms 1234abcd-12ab-34cd-56ef-1234567890ab", copy(kms="1234abcd-12ab-34cd-56ef-1234567890ab", verify=True)),
    (f"copy {AMI} from prod to dev kms mrk-1234abcd12ab34cd56ef1234567890ab", copy(kms="mrk-1234abcd12ab34cd56ef1234567890ab")),
    (
        f"copy {AMI} from prod to dev:us-east-2 kms arn:aws:kms:us-east-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        copy(AccountRef("dev", "us-east-2"), kms="arn:aws:kms:us-east-2:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
    ),
    (f"copy {AMI} from prod:eu-west-1 to prod:us-east-1", copy(AccountRef("prod", "us-east-1"), source=PROD_EU)),
    # migrate
    (f"migrate {INST} from prod:eu-west-1 to eu-west-1b", migrate()),
    (f"migrate {INST} from prod to eu-west-1b", migrate()),  # the zone names the region
    (f"migrate {INST} from prod to eu-west-1b subnet subnet-0123abcd no-reboot", migrate(subnet="subnet-0123abcd", no_reboot=True)),
    (f"migrate {INST} from prod to us-gov-west-1a no-reboot", migrate("us-gov-west-1a", source=AccountRef("prod", "us-gov-west-1"), no_reboot=True)),
    (f"migrate i-0123abcd from prod to eu-west-1b", migrate(instance="i-0123abcd")),
    # status, list, cancel, help, empty
    ("status R-17", StatusCommand("R-17")),
    ("status r-17", StatusCommand("R-17")),
    ("status r17", StatusCommand("R-17")),
    ("status #R-17", StatusCommand("R-17")),
    ("status 17", StatusCommand("R-17")),
    ("cancel r-4", CancelCommand("R-4")),
    ("list", ListCommand("pending")),
    ("list pending", ListCommand("pending")),
    ("list mine", ListCommand("mine")),
    ("list ACTIVE", ListCommand("active")),
    ("list all", ListCommand("all")),
    ("ls", ListCommand("pending")),
    ("help", HelpCommand()),
    ("help copy", HelpCommand("copy")),
    ("?", HelpCommand()),
    ("", EmptyCommand()),
    ("   \t\n ", EmptyCommand()),
    ("\u00a0\u200b", EmptyCommand()),
]


@pytest.mark.parametrize("text,expected", VALID, ids=[t for t, _ in VALID])
def test_valid_commands(text, expected):
    assert parse_command(text) == expected


NORMALISED = [
    # a chat client turns -- into an em dash, quotes into curly quotes, spaces into NBSP
    (f"migrate {INST} from prod to eu-west-1b \u2014no-reboot", migrate(no_reboot=True)),
    (f"migrate {INST} from prod to eu-west-1b --no-reboot", migrate(no_reboot=True)),
    (f"migrate {INST} from prod to eu-west-1b \u2013no-reboot", migrate(no_reboot=True)),
    (f"migrate {INST} from prod to eu\u2013west\u20131b no\u2212reboot", migrate(no_reboot=True)),
    (f"share {AMI} from prod to dev \u2014allow-copy \u2014for 7d", share(allow_copy=True, duration=timedelta(days=7))),
    (f"copy {AMI} from prod to dev name \u201cweb server v2\u201d", copy(name="web server v2")),
    (f"copy {AMI} from prod to dev name \u2018web server\u2019", copy(name="web server")),
    (f"copy {AMI} from prod to dev name \u201eweb   server\u201d", copy(name="web server")),
    # case: verbs, keywords, ids, accounts and regions
    (f"SHARE {AMI.upper()} FROM Prod:EU-WEST-1 TO Dev,STAGING ALLOW-COPY FOR 7D", share(("dev", "staging"), source=PROD_EU, allow_copy=True, duration=timedelta(days=7))),
    (f"Migrate I-0123456789ABCDEF0 From prod To EU-WEST-1B Subnet SUBNET-0123ABCD", migrate(subnet="subnet-0123abcd")),
    (f"share {AMI} from prod to OU-AB12-CD345678", share((), ou=OU)),
    (f"copy {AMI} from prod to dev name WebServer", copy(name="WebServer")),  # names keep their case
    # whitespace: non-breaking, repeated, tabs, newlines, zero-width
    (f"share\u00a0{AMI}\u202ffrom  prod\tto\n dev", share()),
    (f"share {AMI}\u200b from prod to dev\ufeff", share()),
    # full-width letters (NFKC), inline code, Slack escaping
    (f"\uff53\uff48\uff41\uff52\uff45 {AMI} from prod to dev", share()),
    (f"share `{AMI}` from `prod` to `dev`", share()),
    ("copy ami-0123abcd from prod to dev name <http://web.v2|web.v2>", copy(name="web.v2", image=AMI8)),
    ("copy ami-0123abcd from prod to dev name a&amp;b", None),  # unescaped, then refused: & is not allowed
    # options in any order, synonyms
    (f"copy {AMI} from prod to dev verify name abc kms alias/k", copy(kms="alias/k", name="abc", verify=True)),
    (f"migrate {INST} from prod to eu-west-1b no_reboot", migrate(no_reboot=True)),
]


@pytest.mark.parametrize("text,expected", NORMALISED, ids=[t for t, _ in NORMALISED])
def test_normalisation(text, expected):
    if expected is None:
        with pytest.raises(UsageError, match="`&`"):
            parse_command(text)
    else:
        assert parse_command(text) == expected


def test_normalise_keeps_hyphens_inside_words_and_doubles_leading_dashes():
    assert normalise("a\u2014b \u2014c \u2013 d") == "a-b --c -- d"
    assert normalise("\u201cx\u201d \u2018y\u2019") == "\"x\" 'y'"


# (text, words the message must contain, verb whose usage is attached; None: the full usage)
ERRORS = [
    # unknown verbs
    ("sahre x", ["unknown command `sahre`", "did you mean `share`"], None),
    ("deploy now", ["unknown command `deploy`"], None),
    (f"{AMI} share", [f"unknown command `{AMI}`"], None),
    # ids
    ("share ami-12 from prod to dev", ["`ami-12` is not an AMI id (expected ami- followed by 8 or 17 hex digits)"], "share"),
    ("share ami-0123456789abcdef from prod to dev", ["`ami-0123456789abcdef` is not an AMI id"], "share"),
    ("copy ami-0123abcg from prod to dev", ["`ami-0123abcg` is not an AMI id"], "copy"),
    (f"share {INST} from prod to dev", [f"`{INST}` is not an AMI id"], "share"),
    ("share from prod to dev", ["`share` needs an AMI id"], "share"),
    ("share", ["`share` needs an AMI id"], "share"),
    (f"migrate {AMI} from prod to eu-west-1b", [f"`{AMI}` is not an instance id (expected i- followed by 8 or 17 hex digits)"], "migrate"),
    ("migrate from prod to eu-west-1b", ["`migrate` needs an instance id"], "migrate"),
    (f"migrate {INST} from prod to eu-west-1b subnet subnet-12", ["`subnet-12` is not a subnet id"], "migrate"),
    (f"share {AMI} from prod to ou-ab", ["`ou-ab` is not an OU id"], "share"),
    # required parts
    (f"share {AMI} from prod", ["`share` needs `to <account>`"], "share"),
    (f"share {AMI} to dev", ["`share` needs `from <account[:region]>`"], "share"),
    (f"unshare {AMI} from prod", ["`unshare` needs `to <account>`"], "unshare"),
    (f"copy {AMI} from prod", ["`copy` needs `to <account[:region]>`"], "copy"),
    (f"migrate {INST} from prod", ["`migrate` needs `to <availability-zone>`"], "migrate"),
    (f"share {AMI} from to dev", ["`from` needs an account"], "share"),
    (f"share {AMI} from prod to", ["`to` needs accounts"], "share"),
    (f"share {AMI} from prod to for 7d", ["`to` needs accounts"], "share"),
    (f"copy {AMI} from prod to dev kms", ["`kms` needs a key"], "copy"),
    (f"copy {AMI} from prod to dev name", ["`name` needs an AMI name"], "copy"),
    (f"share {AMI} from prod to dev for", ["`for` needs a duration"], "share"),
    (f"migrate {INST} from prod to eu-west-1b subnet", ["`subnet` needs a subnet id"], "migrate"),
    # unknown and misplaced words
    (f"share {AMI} from prod to dev for 7d forever", ["unknown word `forever`"], "share"),
    (f"copy {AMI} from prod to dev verfy", ["unknown word `verfy`", "did you mean `verify`"], "copy"),
    (f"share {AMI} frm prod to dev", ["unknown word `frm`", "did you mean `from`"], "share"),
    (f"share {AMI} prod to dev", ["unknown word `prod`", "`from <account>`"], "share"),
    (f"share {AMI} from prod eu-west-1 to dev", ["unknown word `eu-west-1`", "prod:eu-west-1"], "share"),
    (f"copy {AMI} from prod to dev name web server", ["unknown word `server`", "quotes"], "copy"),
    (f"share {AMI} from prod to dev name abc", ["`name` does not go with `share`", "allow-copy"], "share"),
    (f"share {AMI} from prod to org verify", ["`verify` needs accounts"], "share"),
    (f"unshare {AMI} from prod to dev allow-copy", ["`allow-copy` does not go with `unshare`", "no options"], "unshare"),
    (f"unshare {AMI} from prod to dev for 7d", ["`for` does not go with `unshare`"], "unshare"),
    (f"migrate {INST} from prod to eu-west-1b verify", ["`verify` does not go with `migrate`"], "migrate"),
    (f"copy {AMI} from prod to dev no-reboot", ["`no-reboot` does not go with `copy`"], "copy"),
    # repeated options
    (f"share {AMI} from prod to dev allow-copy allow-copy", ["`allow-copy` is given twice"], "share"),
    (f"share {AMI} from prod to dev for 1d for 2d", ["`for` is given twice"], "share"),
    (f"share {AMI} from prod from dev to qa", ["`from` is given twice"], "share"),
    (f"share {AMI} from prod to dev to qa", ["`to` is given twice"], "share"),
    (f"copy {AMI} from prod to dev verify verify", ["`verify` is given twice"], "copy"),
    (f"copy {AMI} from prod to dev name abc name def", ["`name` is given twice"], "copy"),
    # accounts and regions
    (f"share {AMI} from Prod! to dev", ["`Prod!` is not an account"], "share"),
    (f"share {AMI} from 12345 to dev", ["`12345` is not an account id", "12 digits"], "share"),
    (f"share {AMI} from prod to 1234567890123", ["`1234567890123` is not an account id"], "share"),
    (f"share {AMI} from prod:euwest1 to dev", ["`euwest1` is not a region"], "share"),
    (f"share {AMI} from prod: to dev", ["`prod:`", "region after the colon"], "share"),
    (f"share {AMI} from org to dev", ["`org` is not an account"], "share"),
    (f"share {AMI} from prod to dev:eu-west-1", ["`dev:eu-west-1`", "without a region"], "share"),
    (f"share {AMI} from prod to prod", ["`prod` is the source account"], "share"),
    # targets
    (f"share {AMI} from prod to dev,dev", ["`dev` is named twice"], "share"),
    (f"share {AMI} from prod to dev DEV", ["`DEV` is named twice"], "share"),
    (f"share {AMI} from prod to 2222-2222-2222 222222222222", ["`222222222222` is named twice"], "share"),
    (f"share {AMI} from prod to all", ["`all`", "public sharing is never done by this bot"], "share"),
    (f"share {AMI} from prod to dev,public", ["`public`", "public sharing is never done"], "share"),
    (f"unshare {AMI} from prod to everyone", ["`everyone`", "public sharing is never done"], "unshare"),
    (f"copy {AMI} from prod to all", ["`all`", "public sharing is never done"], "copy"),
    (f"share {AMI} from prod to dev org", ["mixes kinds of target"], "share"),
    (f"share {AMI} from prod to {OU} ou-zz12-zz345678", ["`ou-zz12-zz345678`", "one OU per request"], "share"),
    (f"share {AMI} from prod to org allow-copy", ["`allow-copy` works only with accounts"], "share"),
    (f"copy {AMI} from prod to dev,dev", ["`dev` is named twice"], "copy"),
    (f"copy {AMI} from prod to dev qa", ["unknown word `qa`"], "copy"),
    (f"copy {AMI} from prod to org", ["`org`", "not an organisation or OU"], "copy"),
    (f"distribute {AMI} from prod to dev:eu-west-1 update-lt lt-0123456789abcdef0@dev:us-east-1", ["not a target"], "distribute"),
    (f"distribute {AMI} from prod to dev share-with all", ["public sharing is never done"], "distribute"),
    (f"tag {AMI} from prod app", ["`app` is not a tag"], "tag"),
    (f"tag {AMI} from prod aws:x=1", ["`aws:x`"], "tag"),
    (f"audit {AMI}", ["`audit` needs `from"], "audit"),
    # durations
    (f"share {AMI} from prod to dev for 0d", ["`for 0d`: duration must be 1h to 90d"], "share"),
    (f"share {AMI} from prod to dev for 91d", ["`for 91d`: duration must be 1h to 90d"], "share"),
    (f"share {AMI} from prod to dev for 2161h", ["`for 2161h`: duration must be 1h to 90d"], "share"),
    (f"share {AMI} from prod to dev for 13w", ["`for 13w`: duration must be 1h to 90d"], "share"),
    (f"share {AMI} from prod to dev for ever", ["`for ever`", "12h or 7d"], "share"),
    (f"share {AMI} from prod to dev for 7", ["`for 7`", "12h or 7d"], "share"),
    (f"share {AMI} from prod to dev for 7y", ["`for 7y`"], "share"),
    (f"share {AMI} from prod to dev for {'9' * 5000}d", ["`for 999"], "share"),
    # zones
    (f"migrate {INST} from prod to eu-west-1", ["`eu-west-1` is a region, not an Availability Zone", "eu-west-1b"], "migrate"),
    (f"migrate {INST} from prod to dev", ["`dev` is not an Availability Zone"], "migrate"),
    (f"migrate {INST} from prod:us-east-1 to eu-west-1b", ["`eu-west-1b` is not in us-east-1"], "migrate"),
    # kms and names
    (f"copy {AMI} from prod to dev kms mykey", ["`mykey` is not a KMS key"], "copy"),
    (f"copy {AMI} from prod to dev kms arn:aws:s3:::bucket", ["`arn:aws:s3:::bucket` is not a KMS key"], "copy"),
    (
        f"copy {AMI} from prod to dev:us-east-2 kms arn:aws:kms:eu-west-1:222222222222:alias/k",
        ["is a key in eu-west-1", "goes to us-east-2"],
        "copy",
    ),
    (f"copy {AMI} from prod to dev name ab", ["name `ab` has 2 characters", "3 to 128"], "copy"),
    (f"copy {AMI} from prod to dev name {'a' * 129}", ["has 129 characters"], "copy"),
    (f"copy {AMI} from prod to dev name web#1", ["name `web#1`", "`#` is not allowed"], "copy"),
    (f'copy {AMI} from prod to dev name "unclosed', ["unclosed quote"], "copy"),
    # status, cancel, list, help
    ("status", ["`status` needs a request id"], "status"),
    ("status req-17", ["`req-17` is not a request id"], "status"),
    ("status R-17 R-18", ["unknown word `R-18`"], "status"),
    ("cancel", ["`cancel` needs a request id"], "cancel"),
    ("cancel R-x", ["`R-x` is not a request id"], "cancel"),
    ("list recent", ["unknown word `recent`", "pending, mine, active or all"], "list"),
    ("list mine all", ["unknown word `all`"], "list"),
    ("help me", ["no command `me`"], None),
    ("help copy now", ["unknown word `now`"], "help"),
]


@pytest.mark.parametrize("text,words,verb", ERRORS, ids=[t[:80] for t, _, _ in ERRORS])
def test_errors_name_the_offending_word(text, words, verb):
    with pytest.raises(UsageError) as info:
        parse_command(text)
    err = info.value
    for word in words:
        assert word in err.detail, f"{word!r} not in {err.detail!r}"
    assert err.usage == (usage_for(verb) if verb else USAGE)
    assert len(err.detail) < 400


def test_usage_lists_every_verb_once_per_line():
    lines = USAGE.splitlines()
    assert [line.split()[1] for line in lines] == list(VERBS)
    assert set(VERBS) == {"share", "unshare", "copy", "distribute", "audit", "tag", "migrate", "retire", "status", "list", "history", "cancel", "help"}
    assert "[allow-copy] [for <N>h|<N>d]" in USAGE
    for verb in VERBS:
        assert usage_for(verb).splitlines()[0] == lines[VERBS.index(verb)]
        assert usage_for(verb.upper()).startswith(f"/ami {verb}")
        assert parse_command(usage_for(verb).splitlines()[1].removeprefix("e.g. /ami ")) is not None
    assert usage_for("nonsense") == USAGE


def test_reserved_words_cannot_be_aliases():
    for word in ("to", "from", "for", "org", "all", "public", "verify", "no-reboot", "no_reboot", "allow-copy", "kms"):
        assert is_reserved_word(word)
    for word in ("prod", "dev", "staging", "toast", "org-1"):
        assert not is_reserved_word(word)


VOCABULARY = [
    "share", "unshare", "copy", "migrate", "status", "list", "cancel", "help", "from", "to", "for",
    "allow-copy", "kms", "name", "verify", "subnet", "no-reboot", "org", "all", AMI, AMI8, INST, OU,
    "prod", "dev", "prod:eu-west-1", "dev:", ":", ",", "dev,staging", "111111111111", "eu-west-1b",
    "7d", "0h", "91d", "R-17", "r-", "alias/k", "subnet-0123abcd", '"', "'", "\u201c", "\u2014",
    "\u2013", "\u00a0", "`", "<", ">", "&amp;", "<http://x|y>", "ou-", "ami-", "i-", "--", "9" * 50,
]  # fmt: skip


def test_the_words_issue_10_added():
    from bot.grammar import AccountRef, AuditCommand, DistributeCommand, LaunchTemplateRef, ShareCommand, TagCommand

    several = parse_command(f"copy {AMI} from prod to dev:us-east-1, prod:eu-west-1 verify")
    assert several == DistributeCommand(AMI, AccountRef("prod"), (AccountRef("dev", "us-east-1"), AccountRef("prod", "eu-west-1")), verify=True)
    full = parse_command(f"distribute {AMI} from prod to dev:eu-west-1,qa share-with staging update-lt lt-0123456789abcdef0@dev:eu-west-1 default verify")
    assert full.share_with == ("staging",) and full.update_lt == LaunchTemplateRef("lt-0123456789abcdef0", AccountRef("dev", "eu-west-1"), True)
    assert parse_command(f"share {AMI} from prod to dev verify") == ShareCommand(AMI, AccountRef("prod"), ("dev",), False, None, False, None, True)
    assert parse_command("audit \u2014drift") == AuditCommand(None, None, True)
    assert parse_command(f"audit {AMI} from prod:eu-west-1 --drift") == AuditCommand(AMI, AccountRef("prod", "eu-west-1"), True)
    assert parse_command(f'tag {AMI} from prod app=web "version=2 beta"') == TagCommand(AMI, AccountRef("prod"), (("app", "web"), ("version", "2 beta")))


def test_retire_grammar():
    from bot.verbs.retire.command import RetireCommand

    got = parse_command('retire ami-0123456789abcdef0 from prod:us-east-1 deprecate 2030-01-31 with-copies reason "CVE-2026-1"')
    assert got == RetireCommand("ami-0123456789abcdef0", AccountRef("prod", "us-east-1"), "deprecate", "2030-01-31", True, "CVE-2026-1")
    for text, problem in (("retire ami-0123456789abcdef0 from prod", "needs what to do"),
                          ("retire ami-0123456789abcdef0 from prod disable 2030-01-31", "goes with `deprecate` only"),
                          ("retire ami-0123456789abcdef0 from prod deprecate 2030-02-30", "is not a date"),
                          ("retire ami-0123456789abcdef0 from prod disable deregister", "once"),
                          ("retire ami-0123456789abcdef0 disable", "needs `from")):
        with pytest.raises(UsageError, match=problem):
            parse_command(text)
