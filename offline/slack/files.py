"""The ``files.*`` upload methods of the fake Slack: the three calls of
``WebClient.files_upload_v2`` with Slack's checks.

As documented (docs.slack.dev/reference/methods/files.getUploadURLExternal and
docs.slack.dev/reference/methods/files.completeUploadExternal):

1. ``files.getUploadURLExternal``: ``filename`` and ``length`` (bytes, > 0) are required
   (``invalid_arguments``; a ``length`` of 0 is ``missing_argument``); the token needs
   ``files:write``. Answers an ``upload_url`` (here, on this server: one use) and a ``file_id``.
2. A POST of the bytes to the upload URL (raw or multipart): 200, else 404 for a URL
   this server did not hand out (or one already used).
3. ``files.completeUploadExternal``: ``files`` (a JSON array of ``{"id", "title"}``) is
   required; every id must have been uploaded (``file_not_found``); with ``channel_id``
   the file is shared there (a DM only if the bot opened it: ``channel_not_found``;
   a channel the bot is not in: ``not_in_channel``), else it stays private.
"""

from __future__ import annotations

import json
import secrets

from offline.slack.state import SlackState

UPLOAD_PATH = "/upload/v1/"


class FilesApi(SlackState):
    """Files: what was uploaded and where it was shared."""

    def files(self, channel: str | None = None) -> list[dict]:
        """Completed uploads (``channel``: those shared there), each with ``content`` (bytes),
        ``name``, ``title``, ``channel``, ``initial_comment``."""
        with self._lock:
            return [dict(f) for f in self._files.values() if f.get("completed") and channel in (None, f.get("channel"))]

    # -- the Web API (called with the lock held) ----------------------------------
    def _api_files_getUploadURLExternal(self, p: dict) -> dict:  # noqa: N802 (Slack's method name)
        if "files:write" not in self.scopes:
            return {"error": "missing_scope", "needed": "files:write", "provided": ",".join(sorted(self.scopes))}
        filename, length = p.get("filename"), str(p.get("length") or "")
        if not filename or not length.isdigit():
            return {"error": "invalid_arguments"}
        if int(length) == 0:
            return {"error": "missing_argument"}
        file_id = "F" + secrets.token_hex(5).upper()
        path = UPLOAD_PATH + secrets.token_urlsafe(12)
        self._files[file_id] = {"id": file_id, "name": filename, "length": int(length), "content": None, "completed": False}
        self._upload_paths[path] = file_id
        return {"upload_url": self.base_url + path, "file_id": file_id}

    def _upload(self, path: str, raw: bytes) -> int:
        """A POST to an upload URL (lock held): 200 once per URL this server handed out."""
        file_id = self._upload_paths.pop(path, None)
        if file_id is None:
            return 404
        self._files[file_id]["content"] = raw
        return 200

    def _api_files_completeUploadExternal(self, p: dict) -> dict:  # noqa: N802
        if "files:write" not in self.scopes:
            return {"error": "missing_scope", "needed": "files:write", "provided": ",".join(sorted(self.scopes))}
        try:
            listed = json.loads(p["files"]) if isinstance(p.get("files"), str) else p.get("files")
        except ValueError:
            listed = None
        if not isinstance(listed, list) or not listed or not all(isinstance(f, dict) and f.get("id") for f in listed):
            return {"error": "invalid_arguments"}
        if any(self._files.get(f["id"], {}).get("content") is None for f in listed):
            return {"error": "file_not_found"}
        channel = p.get("channel_id") or None
        if channel is not None:
            if channel in self.unknown_channels or (channel.startswith("D") and channel not in self._dms.values()):
                return {"error": "channel_not_found"}
            if channel in self.channels_bot_cannot_post or channel in self.public_channels_not_joined:
                return {"error": "not_in_channel"}
        done = []
        for f in listed:
            record = self._files[f["id"]]
            record.update(completed=True, title=f.get("title") or record["name"], channel=channel, initial_comment=p.get("initial_comment"))
            done.append({"id": record["id"], "name": record["name"], "title": record["title"], "size": len(record["content"]),
                         "channels": [channel] if channel and not channel.startswith("D") else [],
                         "ims": [channel] if channel and channel.startswith("D") else []})
        return {"files": done}
