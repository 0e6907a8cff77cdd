"""AWS errors in their wire format, as the sandbox answers them (one place for every
patch: the request dispatcher, IAM simulation and enforcement, KMS)."""

from __future__ import annotations

import json
from typing import Any
from xml.sax.saxutils import escape as _xml_escape


def _error_response(resp: Any, code: str, message: str, status: int) -> tuple[int, dict[str, str], str]:
    """An AWS error in the wire format of the service ``resp`` answers for."""
    from moto.core.utils import get_service_model

    try:
        protocol = get_service_model(resp.boto3_service_name).protocol
    except Exception:
        protocol = "query"
    headers = {"server": "amazon.com"}
    msg = _xml_escape(message)
    if protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code><Message>{msg}</Message></Error></Errors>"
            "<RequestID>sandbox-fault</RequestID></Response>"
        )
        headers["Content-Type"] = "text/xml"
    elif protocol in ("json", "rest-json"):
        body = json.dumps({"__type": code, "message": message})
        headers["Content-Type"] = "application/x-amz-json-1.1"
        headers["x-amzn-ErrorType"] = code
    elif protocol == "query":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{'Receiver' if status >= 500 else 'Sender'}</Type><Code>{code}</Code>"
            f"<Message>{msg}</Message></Error><RequestId>sandbox-fault</RequestId></ErrorResponse>"
        )
        headers["Content-Type"] = "text/xml"
    else:
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{msg}</Message></Error>'
        headers["Content-Type"] = "application/xml"
    headers["status"] = str(status)
    return status, headers, body


def _kms_error(code: str, message: str, status: int = 400) -> Exception:
    from moto.core.exceptions import JsonRESTError

    err = JsonRESTError(code, message)
    err.code = status
    return err
