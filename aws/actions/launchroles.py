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
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from aws.partitions import partition_for
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
    denied: list[str] = field(default_factory=list)  # "kms:Decrypt on arn:…" (implicitDeny / explicitDeny)
    error: str | None = None

    @property
    def can_launch(self) -> bool:
        return self.error is None and not self.denied

    def line(self) -> str:
        """One line for the plan or the final message (caller escapes for Slack)."""
        if self.error:
            return f"`{self.role_arn}`: could not ask IAM ({self.error})"
        if self.can_launch:
            return f"`{self.role_arn}`: can launch it (IAM allows RunInstances and the key operations)"
        return f"`{self.role_arn}`: *cannot launch it yet*: IAM does not allow {', '.join(self.denied)}"


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


def _denied(results: list[dict[str, Any]]) -> list[str]:
    return [
        f"{r['EvalActionName']} on {r.get('EvalResourceName', '*')}"
        for r in results
        if r.get("EvalDecision") != "allowed"
    ]


def simulate_launch_roles(iam: Any, roles: list[str], key_arns: list[str], region: str, image_id: str) -> list[RoleAnswer]:
    """Ask IAM, per role, for the key operations on each key and RunInstances on the image."""
    answers = []
    for role in roles:
        try:
            denied: list[str] = []
            if key_arns:
                denied += _denied(iam.simulate_principal_policy(
                    PolicySourceArn=role, ActionNames=list(LAUNCH_KEY_ACTIONS), ResourceArns=list(key_arns),
                    ContextEntries=launch_context(region),
                )["EvaluationResults"])
            denied += _denied(iam.simulate_principal_policy(
                PolicySourceArn=role, ActionNames=["ec2:RunInstances"], ResourceArns=[image_arn(region, image_id)],
            )["EvaluationResults"])
            answers.append(RoleAnswer(role, denied))
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

    @classmethod
    def describe(cls, params, *, account, region):
        return (
            f"Check from `{account.alias}`: can {', '.join(f'`{r}`' for r in params.roles)} launch it? "
            "(SimulatePrincipalPolicy: the key operations through EC2 and RunInstances)"
        )

    def run(self, ctx, account_id, region, params):
        iam = ctx.client("iam", account_id, region)
        answers = simulate_launch_roles(iam, list(params.roles), list(params.key_arns or []), region, params.image_id)
        lines = [f"Launch roles in {account_id}, asked of IAM:"] + [f"• {a.line()}" for a in answers]
        return {"roles": [asdict(a) for a in answers], "final_note": "\n".join(lines), "all_can_launch": all(a.can_launch for a in answers)}
