"""Launch-template versions as AWS makes them, where moto falls short: a new version
with ``SourceVersion`` inherits the source version's launch parameters (moto keeps
only the ones given), and ``DeleteLaunchTemplateVersions`` (which moto lacks)
refuses the default version.

AWS: CreateLaunchTemplateVersion, EC2 API Reference
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplateVersion.html):
"If you specify this parameter, the new version inherits the launch parameters from
the source version. If you specify additional launch parameters for the new version,
they overwrite any corresponding launch parameters inherited from the source
version." DeleteLaunchTemplateVersions
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DeleteLaunchTemplateVersions.html):
"You can't delete the default version of a launch template".
"""

from __future__ import annotations

import copy
from typing import Any

from offline.sandbox.state import _LOCK, _ORIGINALS, _active

# (template id, version number) of deleted versions: hidden from DescribeLaunchTemplateVersions.
_DELETED: set[tuple[str, int]] = set()


def reset_launch_templates() -> None:
    with _LOCK:
        _DELETED.clear()


def _template(self: Any) -> Any:
    name, template_id = self._get_param("LaunchTemplateName"), self._get_param("LaunchTemplateId")
    return self.ec2_backend.get_launch_template(template_id) if template_id else self.ec2_backend.get_launch_template_by_name(name)


def _create_version(self: Any) -> Any:
    source = self._get_param("SourceVersion")
    if _active() is None or not source:
        return _ORIGINALS["LaunchTemplatesResponse.create_launch_template_version"](self)
    from moto.core.responses import ActionResult

    template = _template(self)
    data = copy.deepcopy(template.get_version(source).data)
    data.update(self._get_param("LaunchTemplateData", {}))
    self.error_on_dryrun()
    version = template.create_version(data, self._get_param("VersionDescription"))
    return ActionResult({"LaunchTemplateVersion": {
        "CreateTime": version.create_time, "DefaultVersion": template.is_default(version), "LaunchTemplateData": version.data,
        "LaunchTemplateId": template.id, "LaunchTemplateName": template.name,
        "VersionDescription": version.description, "VersionNumber": version.number,
    }})


def _delete_versions(self: Any) -> Any:
    if _active() is None:
        raise NotImplementedError("The delete_launch_template_versions action has not been implemented")
    from moto.core.responses import ActionResult

    template = _template(self)
    done, refused = [], []
    for raw in self._get_param("Versions", []):
        number = int(raw)
        base = {"LaunchTemplateId": template.id, "LaunchTemplateName": template.name, "VersionNumber": number}
        if number == template.default_version_number:
            refused.append({**base, "ResponseError": {"Code": "launchTemplateVersionIsDefault", "Message": "You can't delete the default version of a launch template."}})
        elif number > len(template.versions) or (template.id, number) in _DELETED:
            refused.append({**base, "ResponseError": {"Code": "launchTemplateVersionDoesNotExist", "Message": f"Version {number} does not exist."}})
        else:
            with _LOCK:
                _DELETED.add((template.id, number))
            done.append(base)
    return ActionResult({"SuccessfullyDeletedLaunchTemplateVersions": done, "UnsuccessfullyDeletedLaunchTemplateVersions": refused})


def _describe_versions(self: Any) -> Any:
    result = _ORIGINALS["LaunchTemplatesResponse.describe_launch_template_versions"](self)
    if _active() is not None:
        with _LOCK:
            result.result["LaunchTemplateVersions"] = [
                v for v in result.result["LaunchTemplateVersions"] if (v["LaunchTemplateId"], v["VersionNumber"]) not in _DELETED
            ]
    return result


def install() -> None:
    from moto.ec2.responses.launch_templates import LaunchTemplates

    for method, handler in (("create_launch_template_version", _create_version), ("describe_launch_template_versions", _describe_versions)):
        _ORIGINALS[f"LaunchTemplatesResponse.{method}"] = getattr(LaunchTemplates, method)
        setattr(LaunchTemplates, method, handler)
    LaunchTemplates.delete_launch_template_versions = _delete_versions
