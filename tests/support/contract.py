"""Every answer the test client gets is checked against ``/openapi.json``.

:class:`ContractClient` is the ``falcon.testing.TestClient`` the unit tests
use: after each request it finds the documented operation (path template and
method; the path's ``x-{method}-alias`` when the query names the alias's
required parameters), requires the status to be one the document lists, and
validates the body against that response's schema. So the document and the
answers cannot drift apart: a field added to an answer but not to its schema,
a status the document does not declare, a wrong type or a required field left
out fails the test that caused it.
"""

import json
import re
from typing import Collection
from typing import Dict
from typing import List
from typing import Optional
from typing import Tuple
from urllib.parse import parse_qsl

import falcon.testing
from openapi_schema_validator import OAS30Validator

from web.openapi import alias_key

#: Routes served outside the document (the document itself, Swagger UI).
UNDOCUMENTED = re.compile(r"^/(openapi\.json|docs(/.*)?)$")
_PARAM = re.compile(r"{[^}/]+}")


class Contract:
    """The operations of an OpenAPI document, and a check of one answer."""

    def __init__(self, spec: dict):
        self.spec = spec
        self._paths: List[Tuple[int, re.Pattern, str]] = []
        for template in spec["paths"]:
            pattern = (
                "^"
                + _PARAM.sub(
                    "[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}")
                )
                + "$"
            )
            # Literal segments win over parameters, as in Falcon's router.
            self._paths.append((template.count("{"), re.compile(pattern), template))
        self._paths.sort(key=lambda entry: entry[0])

    def template(self, path: str) -> Optional[str]:
        """The documented path template ``path`` falls under, if any."""
        for _, pattern, template in self._paths:
            if pattern.match(path):
                return template
        return None

    def operation(
        self, method: str, template: str, query: Collection[str] = ()
    ) -> Optional[dict]:
        """The operation a request to ``template`` with ``query`` names is.

        The path's alias of the method (``x-get-alias``) when the query names
        every query parameter the alias requires, else the method's own.
        """
        item = self.spec["paths"][template]
        alias = item.get(alias_key(method.lower()))
        if alias is not None:
            needed = {
                p["name"]
                for p in alias.get("parameters", ())
                if p["in"] == "query" and p.get("required")
            }
            if needed <= set(query):
                return alias
        return item.get(method.lower())

    def check(
        self, method: str, path: str, result, query: Collection[str] = ()
    ) -> None:
        """Fail (AssertionError) unless ``result`` is what the document promises.

        ``query``: the names of the query parameters sent (besides any in
        ``path``).
        """
        path, _, query_string = path.partition("?")
        query = set(query) | {k for k, _ in parse_qsl(query_string, True)}
        if UNDOCUMENTED.match(path):
            return
        template = self.template(path)
        if template is None:  # no route: Falcon's 404
            assert result.status_code == 404, f"{method} {path}: no documented path"
            return
        operation = self.operation(method, template, query)
        if operation is None:  # a method the path does not have
            if method in ("HEAD", "OPTIONS"):
                return
            assert result.status_code == 405, f"{method} {template} is not documented"
            return
        status = str(result.status_code)
        responses: Dict[str, dict] = operation["responses"]
        assert status in responses, (
            f"{method} {template} answered {status}, which the document does not "
            f"list ({', '.join(sorted(responses))}): {result.text[:300]}"
        )
        content = responses[status].get("content")
        if not result.content:
            return
        assert content, f"{method} {template} {status}: an undocumented body"
        media_type = (result.headers.get("content-type") or "").split(";")[0].strip()
        assert media_type in content, (
            f"{method} {template} {status}: {media_type!r} is not one of "
            f"{sorted(content)}"
        )
        schema = content[media_type].get("schema")
        if schema is None or not media_type.endswith("json"):
            return
        if media_type == "application/x-ndjson":  # one document per line
            for line in result.text.splitlines():
                json.loads(line)
            return
        validator = OAS30Validator(
            {**schema, "components": self.spec.get("components", {})}
        )
        errors = sorted(validator.iter_errors(result.json), key=str)
        assert not errors, (
            f"{method} {template} {status} does not match its schema: "
            + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        )


class ContractClient(falcon.testing.TestClient):
    """A TestClient that checks every answer against the app's own document."""

    def __init__(self, app, **kwargs):
        super().__init__(app, **kwargs)
        self._contract: Optional[Contract] = None

    def simulate_request(self, method="GET", path="/", *args, **kwargs):
        # A name the app answers (ALLOWED_HOSTS), not Falcon's default one.
        kwargs.setdefault("host", "localhost")
        result = super().simulate_request(method, path, *args, **kwargs)
        if self._contract is None:
            spec = (
                super().simulate_request("GET", "/openapi.json", host="localhost").json
            )
            self._contract = Contract(spec)
        query = set(kwargs.get("params") or ())
        query.update(k for k, _ in parse_qsl(kwargs.get("query_string") or "", True))
        self._contract.check(method, path, result, query)
        return result
