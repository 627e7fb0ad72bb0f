"""``create_app(...)``: the FastAPI application serving ``/api/v1/`` (OpenAPI at /api/v1/openapi.json).

Errors map to statuses in one place (:func:`_status_of`): no token or a bad/expired/revoked one
401; a role that may not, or another department's thing, 403 (404 where existence must not
leak); unknown things 404; a bad document 400 with every problem; a step the lifecycle refuses
(state, capacity, ceiling, chain) 409; a cloud or the store unreachable 503. The body of a
401/403/404 carries no data beyond a fixed word.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Optional

from fastapi import Body, Depends, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import APIKeyHeader
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from yunshang import lifecycle as lc
from yunshang.authz import Identity, NotAuthenticated, NotPermitted
from yunshang.errors import CloudUnavailable, InputInvalid, NotFound, YunshangError
from yunshang.plans import NoPlan

log = logging.getLogger("yunshang.api")

MAX_BODY_BYTES = 1_000_000
NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"
MONTH = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
YAML_TYPES = ("application/yaml", "application/x-yaml")     # the submit body may be the CLI's YAML file


# --------------------------------------------------------------------------- schemas (what OpenAPI shows)
class ErrorOut(BaseModel):
    error: str
    problems: list[str] = []


class UnprocessableOut(BaseModel):
    """422: a JSON body the document model refuses (``detail``, FastAPI's form) or a refusal in words."""

    detail: list[dict[str, Any]] = []
    error: str = ""


class IdentityOut(BaseModel):
    user_id: str
    name: str
    roles: list[str]
    department: Optional[str] = None


class PlacementOut(BaseModel):
    request_name: str
    role: str
    provider: str
    contract: str
    zone: str
    instances: int
    vcpu: float
    ram_gb: float
    disk_gb: float
    floating_ips: float
    monthly_cost_cny: float


class RequestOut(BaseModel):
    id: int
    department: str
    title: str
    state: str
    submitted_by: str
    source_file: str
    created_at: str
    updated_at: str
    engine: str
    configured_at: Optional[str] = None
    published_at: Optional[str] = None
    reclaimed_at: Optional[str] = None
    monthly_cost_cny: float
    placements: list[PlacementOut]
    document: dict[str, Any]


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    template: str = Field(pattern=NAME)
    size: str = Field(pattern=NAME)
    count: int = Field(ge=1, le=10000)
    mlps_level: Optional[int] = Field(default=None, ge=1, le=4)
    ha: bool = False
    dr: bool = False
    secret: bool = False


class ProbeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    kind: str = Field(pattern="^(http|tcp)$")
    target: str = Field(min_length=1, max_length=500)
    contract: Optional[str] = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)


class RequestDocumentIn(BaseModel):
    """The request document of ``yunshang request submit`` (one schema: yunshang.catalog.request_document)."""

    model_config = ConfigDict(extra="forbid")
    department: str = Field(pattern=NAME)
    title: str = Field(default="", max_length=500)
    contact: str = Field(default="", max_length=500)
    requests: list[EntryIn] = Field(min_length=1, max_length=200)
    probes: list[ProbeIn] = Field(default=[], max_length=200)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: Optional[dt.date] = None
    live: bool = False


class ConfigureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    engine: str = Field(default="sdk", pattern="^(sdk|pulumi)$")
    date: Optional[dt.date] = None
    plan: Optional[int] = Field(default=None, ge=1, le=2**62,
                                description="The recorded plan to build; default: the latest covering the department.")


# The bodies of a review or configure call that sends none (FastAPI copies a default per request).
NO_REVIEW = ReviewIn()
NO_CONFIGURE = ConfigureIn()


class AuditOut(BaseModel):
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    before: Any = None
    after: Any = None
    reason: str
    hash: str


class AuditLogOut(BaseModel):
    intact: bool
    checked: int
    entries: list[AuditOut]


class CapacityOut(BaseModel):
    provider: str
    zone: str
    source: str
    vcpu: float
    ram_gb: float
    disk_gb: float
    reserved_vcpu: float
    reserved_ram_gb: float
    reserved_disk_gb: float
    free_vcpu: float
    free_ram_gb: float
    free_disk_gb: float


class SizeOut(BaseModel):
    name: str
    vcpu: int
    ram_gb: int
    disk_gb: int
    monthly_cny_per_instance: dict[str, float]


class TemplateOut(BaseModel):
    name: str
    floating_ips: int
    sizes: list[SizeOut]


class ContractOut(BaseModel):
    id: str
    provider: str
    role: str
    start: str
    end: str
    valid_today: bool
    ceiling_cny_per_month: float
    committed_cny_per_month: float
    left_cny_per_month: float


class OfferOut(BaseModel):
    department: str
    display_name: str
    mlps_level: int
    templates: list[TemplateOut]
    contracts: list[ContractOut]


class BillsOut(BaseModel):
    month: str
    departments: list[dict[str, Any]]


# --------------------------------------------------------------------------- errors: one place
def _status_of(exc: Exception) -> tuple[int, dict]:
    if isinstance(exc, NotAuthenticated):
        return 401, {"error": "unauthorized"}
    if isinstance(exc, NotPermitted):
        return (404, {"error": "not found"}) if exc.hide_existence else (403, {"error": "forbidden"})
    if isinstance(exc, NoPlan):       # the request exists: it has no recorded plan to build (how to make one)
        return 409, {"error": str(exc).splitlines()[0][:500]}
    if isinstance(exc, NotFound):
        return 404, {"error": "not found"}
    if isinstance(exc, InputInvalid):
        return 400, {"error": "invalid input", "problems": [str(p) for p in exc.problems]}
    if isinstance(exc, (lc.TransitionRefused, lc.CapacityExhausted)) or getattr(exc, "exit_code", 0) == 3:
        return 409, {"error": str(exc).splitlines()[0][:500]}
    if isinstance(exc, CloudUnavailable) or getattr(exc, "exit_code", 0) == 4:
        return 503, {"error": "a service the center depends on is unavailable"}
    if isinstance(exc, YunshangError):
        return 422, {"error": str(exc).splitlines()[0][:500]}
    return 500, {"error": "internal error"}


class _Stores:
    """One store connection per worker thread (psycopg/sqlite connections are not shared)."""

    def __init__(self, url: str | None):
        self.url = url
        self._local = threading.local()

    def get(self):
        from yunshang.store import open_store

        s = getattr(self._local, "store", None)
        if s is None:
            s = self._local.store = open_store(self.url)
        return s


def create_app(catalog, clouds_file: str | None, db_url: str | None, validator=None, center_cloud: str = "center",
               token_cache_seconds: float = 10.0, notify=None, session_secret: bytes | None = None,
               cookie_secure: bool = True, session_seconds: int = 1800) -> FastAPI:
    """The API over ``catalog`` (a model.Catalog), the store at ``db_url`` and the center's Keystone."""
    from yunshang.usecases import Deps
    from yunshang.usecases import bills as ub
    from yunshang.usecases import requests as uc

    if validator is None:
        from yunshang.openstack.identity import TokenValidator

        validator = TokenValidator(clouds_file, center_cloud, cache_seconds=token_cache_seconds)
    stores = _Stores(db_url)
    app = FastAPI(title="yunshang", version="1", openapi_url="/api/v1/openapi.json", docs_url=None, redoc_url=None,
                  description="The prefecture cloud center's API. Authenticate with `X-Auth-Token: <Keystone token>` "
                              "of the center's Keystone (the clouds.yaml entry `center`).")
    token_header = APIKeyHeader(name="X-Auth-Token", auto_error=False)
    errors: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut},
                                               404: {"model": ErrorOut}}
    changes: dict[int | str, dict[str, Any]] = {**errors, 400: {"model": ErrorOut}, 409: {"model": ErrorOut}}

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        cl = request.headers.get("content-length")
        if cl is not None and (not cl.isdigit() or int(cl) > MAX_BODY_BYTES):
            return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
        if request.method in ("POST", "PUT", "PATCH") and cl is None:
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY_BYTES:
                    return JSONResponse({"error": f"body larger than {MAX_BODY_BYTES} bytes"}, status_code=413)
            request._body = body
        return await call_next(request)

    @app.exception_handler(YunshangError)
    async def _yerr(request: Request, exc: YunshangError):
        status, body = _status_of(exc)
        return JSONResponse(body, status_code=status)

    def who(token: Optional[str] = Depends(token_header)) -> Identity:
        if not token:
            raise NotAuthenticated("no token")
        return validator.validate(token)

    def deps() -> Deps:
        return Deps(stores.get(), catalog, clouds_file, notify=notify)

    # ---- who am I
    @app.get("/api/v1/whoami", response_model=IdentityOut, responses=errors, tags=["identity"])
    def whoami(me: Identity = Depends(who)):
        """The identity the token carries (as the center's Keystone says)."""
        return me.to_dict()

    # ---- what may be ordered
    @app.get("/api/v1/departments/{department}/offer", response_model=OfferOut, responses=errors, tags=["catalog"])
    def offer(department: str = Path(pattern=NAME), me: Identity = Depends(who)):
        """Templates, sizes and monthly prices the department may order, and each contract with what is left."""
        return uc.offer(deps(), me, department)

    # ---- requests
    @app.get("/api/v1/requests", response_model=list[RequestOut], responses=errors, tags=["requests"])
    def list_requests(state: Optional[str] = Query(default=None, pattern="^(" + "|".join(lc.STATES) + ")$"),
                      limit: int = Query(default=100, ge=1, le=1000),
                      before: Optional[int] = Query(default=None, ge=1, le=2**62),
                      me: Identity = Depends(who)):
        """Requests, newest page first cut (`limit`, then `before=<smallest id seen>` for the next page);
        a department's people see only their department's."""
        return [uc.record_dict(r) for r in uc.list_requests(deps(), me, state=state, limit=limit, before_id=before)]

    @app.get("/api/v1/queue", response_model=list[RequestOut], responses=errors, tags=["requests"])
    def queue(me: Identity = Depends(who)):
        """The requests waiting on the caller (endorse, review or approve)."""
        return [uc.record_dict(r) for r in uc.waiting_for(deps(), me)]

    doc_schema = {"$ref": "#/components/schemas/RequestDocumentIn"}
    submit_body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": doc_schema},
        **{t: {"schema": doc_schema} for t in YAML_TYPES}}}}

    @app.post("/api/v1/requests", response_model=RequestOut, status_code=201, tags=["requests"],
              responses={**changes, 415: {"model": ErrorOut}, 422: {"model": UnprocessableOut}},
              openapi_extra=submit_body)
    async def submit(request: Request, me: Identity = Depends(who)):
        """Submit a request document (requester of that department): JSON, or the very YAML file of
        `yunshang request submit` as `application/yaml` / `application/x-yaml` (read by the same safe
        loader: size, alias bombs, duplicate keys and depth refused with 400, field and line named)."""
        from starlette.concurrency import run_in_threadpool

        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if kind not in ("application/json", "", *YAML_TYPES):
            return JSONResponse({"error": f"unsupported content type: expected application/json or "
                                          f"{' / '.join(YAML_TYPES)}"}, status_code=415)
        body = await request.body()
        return await run_in_threadpool(_submit, kind, body, me)     # parse, check and store off the event loop

    def _submit(kind: str, body: bytes, me: Identity) -> dict:
        if kind in YAML_TYPES:
            from yunshang.catalog import parse_request_text

            doc: Any = parse_request_text(body, "request body (YAML)", uc.department_level(catalog), MAX_BODY_BYTES)
        else:
            try:
                doc = RequestDocumentIn.model_validate_json(body or b"null").model_dump(exclude_none=True)
            except ValidationError as exc:
                raise RequestValidationError(exc.errors(include_url=False, include_input=False)) from None
            for p in doc.get("probes", []):
                p.pop("contract", None) if not p.get("contract") else None
        return uc.record_dict(uc.submit(deps(), me, doc, "api"))

    @app.get("/api/v1/requests/{request_id}", response_model=RequestOut, responses=errors, tags=["requests"])
    def show(request_id: int = Path(ge=1, le=2**62), me: Identity = Depends(who)):
        return uc.record_dict(uc.show(deps(), me, request_id))

    @app.post("/api/v1/requests/{request_id}/endorse", response_model=RequestOut, responses=changes,
              tags=["requests"])
    def endorse(request_id: int = Path(ge=1, le=2**62), me: Identity = Depends(who)):
        return uc.record_dict(uc.endorse(deps(), me, request_id))

    @app.post("/api/v1/requests/{request_id}/review", response_model=RequestOut, responses=changes,
              tags=["requests"])
    def review(request_id: int = Path(ge=1, le=2**62), body: ReviewIn = Body(default=NO_REVIEW),
               me: Identity = Depends(who)):
        rec, _ = uc.review(deps(), me, request_id, day=body.date, live=body.live)
        return uc.record_dict(rec)

    def _reasoned(name: str, fn):
        def step(request_id: int = Path(ge=1, le=2**62), body: ReasonIn = Body(...), me: Identity = Depends(who)):
            return uc.record_dict(fn(deps(), me, request_id, body.reason))
        step.__name__ = name.replace("-", "_")
        app.post(f"/api/v1/requests/{{request_id}}/{name}", response_model=RequestOut, responses=changes,
                 tags=["requests"], summary=name.capitalize())(step)

    for name, fn in (("approve", uc.approve), ("reject", uc.reject), ("plan-reclaim", uc.plan_reclaim),
                     ("reclaim", uc.reclaim), ("keep", uc.keep)):
        _reasoned(name, fn)

    @app.post("/api/v1/requests/{request_id}/configure", response_model=RequestOut, responses=changes,
              tags=["requests"])
    def configure(request_id: int = Path(ge=1, le=2**62), body: ConfigureIn = Body(default=NO_CONFIGURE),
                  me: Identity = Depends(who)):
        d = deps()
        if body.date:
            day = body.date
            d.today = lambda: day
        return uc.record_dict(uc.configure(d, me, request_id, body.engine, plan_id=body.plan))

    @app.post("/api/v1/requests/{request_id}/publish", response_model=RequestOut, responses=changes,
              tags=["requests"])
    def publish(request_id: int = Path(ge=1, le=2**62), me: Identity = Depends(who)):
        return uc.record_dict(uc.publish(deps(), me, request_id, with_catalog_probes=True))

    # ---- bills and SLA evidence
    @app.get("/api/v1/departments/{department}/bills/{month}", response_model=BillsOut, responses=errors,
             tags=["bills"])
    def bills(department: str = Path(pattern=NAME), month: str = Path(pattern=MONTH), me: Identity = Depends(who)):
        """The department's bill for the month: per contract, charges, SLA attainment and credit."""
        from yunshang import billing as b

        got = ub.month_bills(deps(), me, month, department)
        return {"month": month, "departments": [b.bill_to_dict(x) for x in got]}

    json_errors: dict[int | str, dict[str, Any]] = {c: {"description": "refused", "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorOut"}}}} for c in (401, 403, 404)}

    @app.get("/api/v1/departments/{department}/bills/{month}/statement", response_class=HTMLResponse,
             responses=json_errors, tags=["bills"])
    def statement(department: str = Path(pattern=NAME), month: str = Path(pattern=MONTH),
                  me: Identity = Depends(who)):
        """The department's statement for the month (HTML)."""
        return HTMLResponse(ub.statement(deps(), me, month, department))

    # ---- audit, capacity
    @app.get("/api/v1/audit", response_model=AuditLogOut, responses=errors, tags=["audit"])
    def audit(request: Optional[int] = Query(default=None, ge=1, le=2**62), me: Identity = Depends(who)):
        """The audit log (auditor, engineer), with the hash chain verified."""
        entries, (ok, _bad, n) = uc.audit_log(deps(), me, request, verify=True)
        return {"intact": ok, "checked": n, "entries": [uc.audit_dict(e) for e in entries]}

    @app.get("/api/v1/capacity", response_model=list[CapacityOut], responses=errors, tags=["capacity"])
    def capacity(me: Identity = Depends(who)):
        """Recorded capacity per operator zone, reserved and free (reviewer, approver, engineer)."""
        return uc.capacity(deps(), me)

    base_openapi = app.openapi

    def openapi() -> dict:
        """The generated document, plus the request document's schema (the submit body is read by hand
        so that YAML can be accepted: FastAPI does not see the model there)."""
        doc = app.openapi_schema
        if doc is None:
            doc = base_openapi()
            comps = doc.setdefault("components", {}).setdefault("schemas", {})
            own = RequestDocumentIn.model_json_schema(ref_template="#/components/schemas/{model}")
            for k, v in own.pop("$defs", {}).items():
                comps.setdefault(k, v)
            comps.setdefault("RequestDocumentIn", own)
            app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]

    # ---- the portal (pages for people), same use cases
    import secrets as _secrets

    from api.portal import Sessions, mount_portal
    from yunshang.openstack.identity import password_login

    mount_portal(app, offer_of=lambda me: uc.offer(deps(), me, me.department), deps_of=deps, validator=validator,
                 login=lambda u, p: password_login(clouds_file, center_cloud, u, p),
                 sessions=Sessions(session_secret or _secrets.token_bytes(32), session_seconds, cookie_secure))
    return app
