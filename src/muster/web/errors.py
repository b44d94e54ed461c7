"""The one place that maps errors to HTTP statuses, in Microsoft Graph's error shape for the admin API."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException

from muster.domain.errors import (
    Conflict,
    DomainError,
    InvalidInput,
    NotAllowed,
    NotFound,
    PreconditionMissing,
)
from muster.protocols.errors import ParseError

log = logging.getLogger(__name__)

_STATUS = {NotFound: 404, Conflict: 409, InvalidInput: 400, NotAllowed: 409, PreconditionMissing: 412}


class GraphInnerError(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    request_id: str = Field(alias="request-id")


class GraphErrorDetail(BaseModel):
    code: str
    message: str
    innerError: GraphInnerError


class GraphError(BaseModel):
    """Microsoft Graph's error body, as `graph_error` writes it."""

    error: GraphErrorDetail


# Declared on every admin route, so the published OpenAPI tells clients (and schemathesis) what errors look like.
ADMIN_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": GraphError, "description": description}
    for status, description in {
        400: "The request is malformed or breaks a rule.",
        401: "No valid bearer token.",
        403: "The caller's role does not allow this.",
        404: "No such object (or not within the caller's scope).",
        409: "The object's state does not allow this.",
        412: "A prerequisite is missing.",
    }.items()
}


def graph_error(status: int, code: str, message: str, request_id: str | None = None) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"request-id": request_id or str(uuid.uuid4())},
        }
    }
    return JSONResponse(body, status_code=status)


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "") or uuid.uuid4())


_DATA_EXCEPTIONS = {
    "22021": "a text value contains a NUL or an invalid character",
    "22P05": "a text value contains a character the database cannot store",
    "22001": "a text value is too long",
    "22003": "a number is out of range",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(request: Request, error: DomainError) -> JSONResponse:
        return graph_error(_STATUS.get(type(error), 400), error.code, error.message, _request_id(request))

    @app.exception_handler(ParseError)
    async def parse_error(request: Request, error: ParseError) -> JSONResponse:
        return graph_error(400, "badRequest", error.reason, _request_id(request))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in error.errors())
        return graph_error(400, "badRequest", problems or "invalid request", _request_id(request))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        codes = {
            401: "unauthenticated",
            403: "forbidden",
            404: "notFound",
            405: "methodNotAllowed",
            413: "requestTooLarge",
            415: "unsupportedMediaType",
        }
        response = graph_error(
            error.status_code,
            codes.get(error.status_code, "badRequest"),
            str(error.detail),
            _request_id(request),
        )
        if error.headers:
            response.headers.update(error.headers)
        return response

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, error: DBAPIError) -> JSONResponse:
        # PostgreSQL refuses some values SQLite stores (NUL in text, over-long strings, out-of-range numbers):
        # SQLSTATE class 22 is bad data from the request; the transaction was rolled back, nothing was written.
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        if sqlstate.startswith("22"):
            reason = _DATA_EXCEPTIONS.get(sqlstate, "a value in the request cannot be stored")
            return graph_error(400, "badRequest", reason, _request_id(request))
        return await unexpected(request, error)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return graph_error(500, "internalServerError", "unexpected server error", _request_id(request))
