"""Who is who in the fake Slack: ``users.info`` and ``usergroups.users.list``."""

from __future__ import annotations

from offline.slack.state import SlackState


class PeopleApi(SlackState):
    """People: users (defaults, overridden by ``users=``) and user groups."""

    def _api_usergroups_users_list(self, p: dict) -> dict:
        if p.get("usergroup") not in self.usergroups:
            return {"error": "no_such_subteam"}
        return {"users": list(self.usergroups[p["usergroup"]])}

    def _api_users_info(self, p: dict) -> dict:
        uid = p.get("user") or ""
        if "users:read" not in self.scopes:  # docs.slack.dev/reference/methods/users.info: users:read
            return {"error": "missing_scope", "needed": "users:read", "provided": ",".join(sorted(self.scopes))}
        if uid[:1] not in ("U", "W") or not uid.isalnum():
            return {"error": "user_not_found"}
        name = uid.lower()
        user = {"id": uid, "team_id": self.team_id, "name": name, "real_name": name.title(),
                "tz": "UTC", "tz_label": "Coordinated Universal Time", "tz_offset": 0,
                "is_bot": uid == self.bot_user_id, "deleted": False,
                "profile": {"display_name": name, "real_name": name.title()}}
        return {"user": {**user, **self.users.get(uid, {})}}
