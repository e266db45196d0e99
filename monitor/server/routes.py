"""The HTTP API's routes, each declared once with its request and answer models: the router
is set up from the declarations, and the OpenAPI document is made from them, so that the
two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NO_NUL = "^[^\\x00]*$"
"""What a path or query parameter may hold: anything but NUL."""
_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Answer:
    """One status a route answers with: a JSON body of `model`, or none."""

    description: str = "OK"
    model: type[BaseModel] | None = None


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    schema: Mapping[str, Any]
    required: bool = False


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    answers: Mapping[int, Answer]
    body: type[BaseModel] | None = None
    """The JSON body the route reads, checked against this model."""
    body_text: str = ""
    query: tuple[Query, ...] = ()
    public: bool = False
    """Open without a token."""
    enums: Mapping[str, Iterable[str]] = field(default_factory=dict)
    """Values a field of `body` takes that only the running configuration knows, by field."""


def ok(model: type[BaseModel], description: str = "OK") -> Answer:
    return Answer(description, model)


def install(router: web.UrlDispatcher, routes: Iterable[Route]) -> None:
    for route in routes:
        router.add_route(route.method, route.path, route.handler)


def openapi(routes: Iterable[Route], *, title: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`."""
    routes = list(routes)
    answered = {a.model for r in routes for a in r.answers.values() if a.model is not None}
    read = {r.body for r in routes if r.body is not None}
    _, schemas = models_json_schema(
        [
            *((model, "serialization") for model in sorted(answered, key=_name)),
            *((model, "validation") for model in sorted(read, key=_name)),
        ],
        ref_template=_REF,
    )
    defined = schemas["$defs"]
    for route in routes:
        if route.body is not None:
            for name, values in route.enums.items():
                _restrict(defined[route.body.__name__], name, list(values))
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "components": {
            "schemas": defined,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": route.summary}
    if route.public:
        operation["security"] = []
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": NO_NUL},
        }
        for name in _path_names(route.path)
    ]
    parameters += [
        {
            "name": query.name,
            "in": "query",
            "description": query.description,
            "schema": dict(query.schema),
            **({"required": True} if query.required else {}),
        }
        for query in route.query
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "description": route.body_text,
            "content": {"application/json": {"schema": {"$ref": _ref(route.body)}}},
        }
    operation["responses"] = {
        str(status): _answer(answer) for status, answer in sorted(route.answers.items())
    }
    return operation


def _answer(answer: Answer) -> dict[str, Any]:
    if answer.model is None:
        return {"description": answer.description}
    schema = {"$ref": _ref(answer.model)}
    return {"description": answer.description, "content": {"application/json": {"schema": schema}}}


def _restrict(schema: dict[str, Any], name: str, values: list[str]) -> None:
    """`name`, a list of strings or null, takes `values` alone."""
    listed = schema["properties"][name]["anyOf"][0]
    listed["items"]["enum"] = values


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _ref(model: type[BaseModel]) -> str:
    return _REF.format(model=model.__name__)


def _name(model: type[BaseModel]) -> str:
    return model.__name__
