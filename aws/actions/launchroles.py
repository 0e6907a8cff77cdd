"""Can the target's own roles launch the AMI? Asked of IAM, not assumed.

A grant or key-policy statement is only half of cross-account key use: "neither the
key policy nor the IAM policy alone is sufficient" (KMS Developer Guide, "Allowing
users in other accounts to use a KMS key"). The principals in the target account
that launch instances (``accounts.<a>.launch_roles``) also need IAM allowing the KMS
operations a launch from an encrypted AMI makes through EC2 ("Use encryption with
EBS-backed AMIs", EC2 User Guide) on the source key, and ``ec2:RunInstances``. amibot
asks IAM with ``iam:SimulatePrincipalPolicy`` from the target's amibot role, with
the request context EC2 supplies (``kms:ViaService``, ``kms:GrantIsForAWSResource``),
and says per role what is missing, with the statement to paste.

A real launch needs more than the image and the key: ``ec2:RunInstances`` on the
instance, its volumes, the subnet, security group and network interface,
``ec2:CreateTags`` with ``ec2:CreateAction = RunInstances`` (tags on create), and
``iam:PassRole`` (``iam:PassedToService = ec2.amazonaws.com``) for an instance role the
target's launches pass (``accounts.<a>.pass_roles``, named ARNs only). IAM answers one
aggregated ``EvaluationResult`` per action, per resource in ``ResourceSpecificResults``;
a decision that depends on a context key amibot did not supply
(``MissingContextValues``) is "cannot tell", said as such, never "allowed" (IAM API
Reference: "SimulatePrincipalPolicy", "EvaluationResult").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from aws.partitions import partition_for
from aws.reads import SEQUENTIAL, ParallelReads
from aws.actions.base import Action, ActionParams, register

# What EC2 does with the snapshots' key when a role launches from the AMI.
LAUNCH_KEY_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncryptFrom")
LAUNCH_KEY_CRYPTO = tuple(a for a in LAUNCH_KEY_ACTIONS if a != "kms:CreateGrant")
SIMULATE_PERMISSIONS = ("iam:SimulatePrincipalPolicy",)


@dataclass
class RoleAnswer:
    """IAM's answer for one role: what it may not do (empty: it can launch), or why
    nobody could ask."""

    role_arn: str
    denied: list[str] = field(default_factory=list)  # "kms:Decrypt on arn:… (the AMI's key)" (implicitDeny / explicitDeny)
    error: str | None = None
    unknown: list[str] = field(default_factory=list)  # "… (depends on <keys>, which amibot did not supply)"

    @property
    def can_launch(self) -> bool:
        return self.error is None and not self.denied and not self.unknown

    def line(self) -> str:
        """One line for the plan or the final message (caller escapes for Slack)."""
        if self.error:
            return f"`{self.role_arn}`: could not ask IAM ({self.error})"
        if self.can_launch:
            return f"`{self.role_arn}`: can launch it (IAM allows RunInstances, tags on create and the key operations)"
        parts = []
        if self.denied:
            parts.append(f"`{self.role_arn}`: *cannot launch it yet*: IAM does not allow {', '.join(self.denied)}")
        if self.unknown:
            parts.append(f"`{self.role_arn}`: *cannot tell* whether IAM allows {', '.join(self.unknown)}")
        return "; ".join(parts)


def image_arn(region: str, image_id: str) -> str:
    """The ARN IAM evaluates ``ec2:RunInstances`` on for an image (images have no account in it)."""
    return f"arn:{partition_for(region)}:ec2:{region}::image/{image_id}"


def launch_context(region: str) -> list[dict[str, Any]]:
    """The request context EC2 supplies when it uses the key for a launch."""
    return [
        {"ContextKeyName": "kms:ViaService", "ContextKeyValues": [f"ec2.{region}.amazonaws.com"], "ContextKeyType": "string"},
        {"ContextKeyName": "kms:GrantIsForAWSResource", "ContextKeyValues": ["true"], "ContextKeyType": "boolean"},
    ]


def required_statement(key_arns: list[str], region: str) -> dict[str, Any]:
    """The IAM policy the target's launching roles need for the source key(s), ready
    to paste: the crypto operations only through EC2, CreateGrant only for EC2's
    attachments (the same conditions amibot's own policy uses)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "LaunchFromSharedEncryptedAmi",
                "Effect": "Allow",
                "Action": list(LAUNCH_KEY_CRYPTO),
                "Resource": sorted(key_arns),
                "Condition": {"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}},
            },
            {
                "Sid": "LetEc2AttachTheVolumes",
                "Effect": "Allow",
                "Action": ["kms:CreateGrant"],
                "Resource": sorted(key_arns),
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ],
    }


def render_required_statement(key_arns: list[str], region: str) -> str:
    return json.dumps(required_statement(key_arns, region), indent=2)


# What each resource of a launch is, in the requester's words.
_WORDS = {"image": "the AMI", "instance": "the new instance", "volume": "its volumes", "subnet": "the subnet",
          "security-group": "the security group", "network-interface": "its network interface", "key": "the AMI's key",
          "role": "the instance role it passes"}
LAUNCH_RESOURCES = ("instance", "volume", "subnet", "security-group", "network-interface")


def _words(resource: str) -> str:
    kind = resource.rsplit(":", 1)[-1].split("/", 1)[0]
    return _WORDS.get(kind, "any resource" if resource == "*" else kind)


def read_results(results: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(denied, cannot tell) from IAM's aggregated results: per resource from
    ``ResourceSpecificResults`` when present, else the top-level decision; a decision
    with ``MissingContextValues`` is "cannot tell" (unless an explicit deny)."""
    denied, unknown = [], []
    for result in results:
        action, top_missing = result["EvalActionName"], list(result.get("MissingContextValues") or [])
        specific = result.get("ResourceSpecificResults") or [{
            "EvalResourceName": result.get("EvalResourceName", "*"), "EvalResourceDecision": result.get("EvalDecision"),
        }]
        for one in specific:
            resource = one.get("EvalResourceName") or "*"
            decision = one.get("EvalResourceDecision")
            missing = sorted(set(top_missing) | set(one.get("MissingContextValues") or []))
            what = f"{action} on {resource} ({_words(resource)})"
            if decision == "explicitDeny" or (decision != "allowed" and not missing):
                denied.append(what)
            elif missing:
                unknown.append(f"{what}, which depends on {', '.join(missing)} (amibot did not supply it)")
    return denied, unknown


def launch_resources(region: str, account_id: str) -> list[str]:
    """The resources RunInstances is authorised on besides the image (any of each kind)."""
    return [f"arn:{partition_for(region)}:ec2:{region}:{account_id}:{kind}/*" for kind in LAUNCH_RESOURCES]


def _simulations(role: str, key_arns: list[str], region: str, image_id: str, pass_roles: list[str]) -> list[dict[str, Any]]:
    account_id = role.split(":")[4]
    created = [f"arn:{partition_for(region)}:ec2:{region}:{account_id}:{kind}/*" for kind in ("instance", "volume")]
    asks: list[dict[str, Any]] = []
    if key_arns:
        asks.append({"ActionNames": list(LAUNCH_KEY_ACTIONS), "ResourceArns": list(key_arns), "ContextEntries": launch_context(region)})
    asks.append({"ActionNames": ["ec2:RunInstances"], "ResourceArns": [image_arn(region, image_id)] + launch_resources(region, account_id)})
    asks.append({"ActionNames": ["ec2:CreateTags"], "ResourceArns": created, "ContextEntries": [
        {"ContextKeyName": "ec2:CreateAction", "ContextKeyValues": ["RunInstances"], "ContextKeyType": "string"}]})
    named = [r for r in pass_roles if "*" not in r and "?" not in r]
    if named:
        asks.append({"ActionNames": ["iam:PassRole"], "ResourceArns": named, "ContextEntries": [
            {"ContextKeyName": "iam:PassedToService", "ContextKeyValues": ["ec2.amazonaws.com"], "ContextKeyType": "string"}]})
    return asks


def simulate_launch_roles(
    iam: Any, roles: list[str], key_arns: list[str], region: str, image_id: str, pass_roles: list[str] | None = None,
    reads: ParallelReads = SEQUENTIAL,
) -> list[RoleAnswer]:
    """Ask IAM, per role, for what a launch from the AMI needs: the key operations on
    each key, RunInstances on the image and the launch's resources, tags on create,
    and PassRole for the named instance roles. Every simulation is started at once
    on ``reads``; a role's answer is read in the order of its asks (its first failed
    ask is its error, as when they were made one after the other)."""
    started = [
        (role, [reads.start(f"simulate {role}", lambda role=role, ask=ask: iam.simulate_principal_policy(PolicySourceArn=role, **ask))
                for ask in _simulations(role, key_arns, region, image_id, list(pass_roles or []))])
        for role in roles
    ]
    answers = []
    for role, pending in started:
        try:
            denied: list[str] = []
            unknown: list[str] = []
            for asked in pending:
                no, maybe = read_results(asked.result()["EvaluationResults"])
                denied += no
                unknown += maybe
            answers.append(RoleAnswer(role, denied, unknown=unknown))
        except ClientError as error:
            err = error.response.get("Error", {})
            answers.append(RoleAnswer(role, error=f"{err.get('Code')}: {err.get('Message', '')}"))
    return answers


@register
class CheckLaunchRoles(Action):
    """From the target account: can each configured launch role launch the AMI? Asks
    IAM (SimulatePrincipalPolicy); reports, never fails the share (the owners of the
    target fix their roles with the statement in the final message).

    params: ``image_id``, ``key_arns``, ``roles``. Result: ``roles`` (answers) and
    ``final_note`` (the lines for the final message)."""

    name = "verify.launch_roles"
    permissions = SIMULATE_PERMISSIONS
    undoable = False

    @dataclass(frozen=True, kw_only=True)
    class Params(ActionParams):
        """The AMI, its keys, and the target's launch roles to ask IAM about."""

        image_id: str
        key_arns: list[str] = field(default_factory=list)
        roles: list[str]
        pass_roles: list[str] = field(default_factory=list)

    @classmethod
    def describe(cls, params, *, account, region):
        return (
            f"Check from `{account.alias}`: can {', '.join(f'`{r}`' for r in params.roles)} launch it? "
            "(SimulatePrincipalPolicy: the key operations through EC2, RunInstances on the image and the launch's resources, tags on create, PassRole)"
        )

    def run(self, ctx, account_id, region, params):
        iam = ctx.client("iam", account_id, region)
        answers = simulate_launch_roles(iam, list(params.roles), list(params.key_arns or []), region, params.image_id,
                                        list(params.pass_roles or []))
        lines = [f"Launch roles in {account_id}, asked of IAM:"] + [f"• {a.line()}" for a in answers]
        return {"roles": [asdict(a) for a in answers], "final_note": "\n".join(lines), "all_can_launch": all(a.can_launch for a in answers)}
