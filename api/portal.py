"""The portal: pages for people on the API's server (same use cases, same authorisation).

Log in with the Keystone name and password of the center's identity; the session is a cookie
(HttpOnly, SameSite=Strict, Secure configurable, fixed lifetime) holding a random session id
and the person's Keystone token, signed with the server's secret (shared by every API process
through ``--session-secret-file``), so any process serves any session. Every form carries a
CSRF token bound to the session id; a session id is never taken from the client before login
(a fresh one is made at every login: no fixation). Chinese and English labels (``?lang=``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any, Callable

import jinja2
from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from yunshang import lifecycle as lc
from yunshang.authz import Identity, NotAuthenticated, NotPermitted, may
from yunshang.errors import InputInvalid, YunshangError

COOKIE = "ys_session"
PRE = "ys_pre"

LABELS = {
    "zh": {"title": "云上 · 政务云服务门户", "login": "登录", "user": "用户名", "password": "密码", "logout": "退出",
           "new": "新建申请", "mine": "本部门申请", "queue": "待我处理", "bills": "账单", "request": "申请",
           "template": "模板", "size": "规格", "count": "数量", "name": "名称", "ha": "高可用", "dr": "异地灾备",
           "preview": "计算价格", "submit": "提交申请", "monthly": "每月费用（元）", "left": "合同余额（元/月）",
           "ceiling": "合同上限", "state": "状态", "department": "部门", "reason": "理由", "endorse": "部门审核同意",
           "review": "技术审核", "approve": "批准", "reject": "驳回", "configure": "开通", "publish": "发布",
           "refused": "无权操作", "badlogin": "用户名或密码错误", "expired": "会话已过期，请重新登录",
           "welcome": "您好", "roles": "角色", "cost": "月费用"},
    "en": {"title": "yunshang · government cloud portal", "login": "Log in", "user": "User name",
           "password": "Password", "logout": "Log out", "new": "New request", "mine": "Requests",
           "queue": "Waiting for me", "bills": "Bills", "request": "Request", "template": "Template", "size": "Size",
           "count": "Count", "name": "Name", "ha": "High availability", "dr": "Disaster recovery",
           "preview": "Price it", "submit": "Submit", "monthly": "Monthly price (CNY)",
           "left": "Left under the ceiling (CNY/month)", "ceiling": "Ceiling", "state": "State",
           "department": "Department", "reason": "Reason", "endorse": "Endorse", "review": "Review",
           "approve": "Approve", "reject": "Reject", "configure": "Configure", "publish": "Publish",
           "refused": "Not permitted", "badlogin": "Wrong user name or password",
           "expired": "Your session expired: log in again", "welcome": "Hello", "roles": "Roles",
           "cost": "Monthly cost"},
}

_env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
_BASE = """<!doctype html><html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<title>{{ L.title }}</title><style>
body{font-family:"WenQuanYi Micro Hei",sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:.3em .6em}nav a{margin-right:1em}.err{color:#b00}.ok{color:#070}
</style></head><body><h1>{{ L.title }}</h1>
{% if me %}<nav><span id="me">{{ L.welcome }}, {{ me.name }} ({{ me.roles|join(', ') }}\
{% if me.department %}, {{ me.department }}{% endif %})</span>
<a href="/portal/?lang={{ lang }}">{{ L.mine }}</a><a id="queue-link" href="/portal/queue?lang={{ lang }}">{{ L.queue }}</a>
{% if 'requester' in me.roles %}<a id="new-link" href="/portal/new?lang={{ lang }}">{{ L.new }}</a>{% endif %}
<form method="post" action="/portal/logout" style="display:inline"><input type="hidden" name="csrf" value="{{ csrf }}">
<button id="logout">{{ L.logout }}</button></form>
<a href="?lang={{ 'en' if lang == 'zh' else 'zh' }}">{{ 'English' if lang == 'zh' else '中文' }}</a></nav>{% endif %}
{% if msg %}<p class="err" id="msg">{{ msg }}</p>{% endif %}
{{ body|safe }}</body></html>"""

_LOGIN = """<form method="post" action="/portal/login?lang={{ lang }}" id="login">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="lang" value="{{ lang }}">
<p><label>{{ L.user }} <input name="username" id="username" autocomplete="username"></label></p>
<p><label>{{ L.password }} <input type="password" name="password" id="password" autocomplete="current-password"></label></p>
<button id="do-login">{{ L.login }}</button></form>"""

_LIST = """<h2>{{ heading }}</h2><table id="requests"><tr><th>#</th><th>{{ L.department }}</th><th>{{ L.name }}</th>
<th>{{ L.state }}</th><th>{{ L.cost }}</th></tr>{% for r in recs %}<tr class="req" data-id="{{ r.id }}">
<td><a href="/portal/requests/{{ r.id }}?lang={{ lang }}">{{ r.id }}</a></td><td>{{ r.department }}</td>
<td>{{ r.title }}</td><td class="state">{{ r.state }}</td><td>{{ '%.2f'|format(r.monthly_cost_cny) }}</td></tr>
{% endfor %}</table>"""

_NEW = """<h2>{{ L.new }} — {{ offer.display_name }}</h2>
<form method="post" action="/portal/new?lang={{ lang }}" id="new-request"><input type="hidden" name="csrf" value="{{ csrf }}">
<p><label>{{ L.request }} <input name="title" id="title" value="{{ form.title }}"></label></p>
<p><label>{{ L.name }} <input name="name" id="name" value="{{ form.name }}" pattern="[a-z0-9][a-z0-9-]*"></label></p>
<p><label>{{ L.template }} <select name="template" id="template">{% for t in offer.templates %}
<option value="{{ t.name }}" {% if t.name == form.template %}selected{% endif %}>{{ t.name }}</option>{% endfor %}\
</select></label>
<label>{{ L.size }} <select name="size" id="size">{% for s in sizes %}\
<option {% if s == form.size %}selected{% endif %}>{{ s }}</option>{% endfor %}</select></label>
<label>{{ L.count }} <input name="count" id="count" type="number" min="1" value="{{ form.count }}"></label>
<label><input type="checkbox" name="ha" id="ha" value="1" {% if form.ha %}checked{% endif %}> {{ L.ha }}</label>
<label><input type="checkbox" name="dr" id="dr" value="1" {% if form.dr %}checked{% endif %}> {{ L.dr }}</label></p>
{% if price %}<table id="price"><tr><th>{{ L.ceiling }}</th><th>{{ L.monthly }}</th><th>{{ L.left }}</th></tr>
{% for c in price %}<tr><td>{{ c.id }} ({{ c.provider }}, {{ c.role }})</td>\
<td class="monthly">{{ '%.2f'|format(c.monthly) }}</td>
<td class="left">{{ '%.2f'|format(c.left_after) }}</td></tr>{% endfor %}</table>{% endif %}
<button name="do" value="preview" id="preview">{{ L.preview }}</button>
<button name="do" value="submit" id="submit">{{ L.submit }}</button></form>"""

_SHOW = """<h2>{{ L.request }} {{ r.id }}: {{ r.title }} [<span id="state">{{ r.state }}</span>]</h2>
<p>{{ L.department }}: {{ r.department }} · {{ L.cost }}: {{ '%.2f'|format(r.monthly_cost_cny) }}</p>
<table>{% for p in r.placements %}<tr><td>{{ p.request_name }}</td><td>{{ p.role }}</td><td>{{ p.provider }}/{{ p.zone }}</td>
<td>{{ p.instances }}</td><td>{{ '%.2f'|format(p.monthly_cost_cny) }}</td></tr>{% endfor %}</table>
{% for a in actions %}<form method="post" action="/portal/requests/{{ r.id }}/{{ a }}?lang={{ lang }}" class="action">
<input type="hidden" name="csrf" value="{{ csrf }}">{% if a in ('approve', 'reject') %}
<input name="reason" id="reason-{{ a }}" placeholder="{{ L.reason }}">{% endif %}
<button id="do-{{ a }}">{{ L[a] }}</button></form>{% endfor %}"""

ACTION_OF = {"endorse": "request.endorse", "review": "request.review", "approve": "request.approve",
             "reject": "request.reject", "configure": "request.configure", "publish": "request.publish"}
ACTION_STATES = {"endorse": (lc.SUBMITTED,), "review": (lc.SUBMITTED, lc.ENDORSED),
                 "approve": (lc.REVIEWED, lc.FIRST_APPROVED), "reject": (lc.SUBMITTED, lc.ENDORSED, lc.REVIEWED),
                 "configure": (lc.APPROVED,), "publish": (lc.CONFIGURED,)}


class Sessions:
    """Signed session cookies: {sid, token, exp, lang}; the CSRF token is an HMAC of the sid."""

    def __init__(self, secret: bytes, max_age_seconds: int = 1800, secure: bool = False):
        self.secret, self.max_age, self.secure = secret, max_age_seconds, secure

    def _mac(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()

    def make(self, token: str, lang: str) -> str:
        body = json.dumps({"sid": secrets.token_urlsafe(24), "tok": token, "exp": int(time.time()) + self.max_age,
                           "lang": lang}).encode()
        b = base64.urlsafe_b64encode(body).decode()
        return b + "." + self._mac(b.encode())

    def read(self, cookie: str | None) -> dict | None:
        if not cookie or "." not in cookie or len(cookie) > 8192:
            return None
        b, _, mac = cookie.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(b.encode())):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(b.encode()))
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("exp", 0) > time.time() else None

    def csrf(self, sid: str) -> str:
        return self._mac(b"csrf:" + sid.encode())[:40]

    def set(self, resp: Response, name: str, value: str, max_age: int | None = None) -> None:
        resp.set_cookie(name, value, max_age=max_age or self.max_age, httponly=True, secure=self.secure,
                        samesite="strict", path="/portal")


def mount_portal(app: FastAPI, *, offer_of: Callable, deps_of: Callable, validator, login: Callable[[str, str], str],
                 sessions: Sessions) -> None:
    from yunshang.usecases import requests as uc

    def lang_of(request: Request, sess: dict | None = None) -> str:
        for lang in (request.query_params.get("lang"), (sess or {}).get("lang")):
            if isinstance(lang, str) and lang in LABELS:
                return lang
        return "zh"

    def page(request: Request, body_tpl: str, sess: dict | None, me: Identity | None, status: int = 200,
             msg: str = "", **ctx: Any) -> HTMLResponse:
        lang = lang_of(request, sess)
        L = LABELS[lang]
        csrf = sessions.csrf(sess["sid"]) if sess else ctx.pop("csrf", "")
        body = _env.from_string(body_tpl).render(L=L, lang=lang, csrf=csrf, **ctx)
        html = _env.from_string(_BASE).render(L=L, lang=lang, me=me.to_dict() if me else None, csrf=csrf,
                                              msg=msg, body=body)
        r = HTMLResponse(html, status_code=status)
        r.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; " \
                                               "frame-ancestors 'none'"
        r.headers["X-Frame-Options"] = "DENY"
        r.headers["Cache-Control"] = "no-store"
        return r

    def session(request: Request) -> tuple[dict | None, Identity | None]:
        sess = sessions.read(request.cookies.get(COOKIE))
        if not sess:
            return None, None
        try:
            return sess, validator.validate(sess["tok"])
        except NotAuthenticated:
            return None, None

    def to_login(request: Request, expired: bool = False) -> Response:
        lang = lang_of(request)
        return RedirectResponse(f"/portal/login?lang={lang}" + ("&expired=1" if expired else ""), status_code=303)

    def check_csrf(sess: dict | None, value: str | None) -> None:
        if not sess or not value or not hmac.compare_digest(value, sessions.csrf(sess["sid"])):
            raise NotPermitted("bad CSRF token")

    @app.get("/portal/login", include_in_schema=False)
    def login_form(request: Request):
        pre = secrets.token_urlsafe(24)
        lang = lang_of(request)
        msg = LABELS[lang]["expired"] if request.query_params.get("expired") else ""
        r = page(request, _LOGIN, None, None, msg=msg, csrf=sessions.csrf("pre:" + pre))
        sessions.set(r, PRE, pre, max_age=600)
        return r

    @app.post("/portal/login", include_in_schema=False)
    def do_login(request: Request, username: str = Form(""), password: str = Form(""), csrf: str = Form(""),
                 lang: str = Form("zh")):
        pre = request.cookies.get(PRE, "")
        lang = lang if lang in LABELS else "zh"
        if not pre or not hmac.compare_digest(csrf, sessions.csrf("pre:" + pre)):
            return page(request, _LOGIN, None, None, status=403, msg=LABELS[lang]["refused"],
                        csrf=sessions.csrf("pre:" + pre) if pre else "")
        try:
            token = login(username, password)
        except NotAuthenticated:
            return page(request, _LOGIN, None, None, status=401, msg=LABELS[lang]["badlogin"],
                        csrf=sessions.csrf("pre:" + pre))
        r = RedirectResponse(f"/portal/?lang={lang}", status_code=303)
        sessions.set(r, COOKIE, sessions.make(token, lang))     # a new session id at every login
        r.delete_cookie(PRE, path="/portal")
        return r

    @app.post("/portal/logout", include_in_schema=False)
    def logout(request: Request, csrf: str = Form("")):
        sess, me = session(request)
        if sess:
            check_csrf(sess, csrf)
            validator.revoke(sess["tok"])          # the old cookie is worth nothing after this
        r = RedirectResponse("/portal/login", status_code=303)
        r.delete_cookie(COOKIE, path="/portal")
        return r

    @app.get("/portal/", include_in_schema=False)
    def home(request: Request):
        sess, me = session(request)
        if not me:
            return to_login(request, bool(request.cookies.get(COOKIE)))
        recs = [uc.record_dict(r) for r in uc.list_requests(deps_of(), me)]
        return page(request, _LIST, sess, me, heading=LABELS[lang_of(request, sess)]["mine"], recs=recs)

    @app.get("/portal/queue", include_in_schema=False)
    def queue(request: Request):
        sess, me = session(request)
        if not me:
            return to_login(request, True)
        recs = [uc.record_dict(r) for r in uc.waiting_for(deps_of(), me)]
        return page(request, _LIST, sess, me, heading=LABELS[lang_of(request, sess)]["queue"], recs=recs)

    def _new_ctx(me: Identity, form: dict) -> dict:
        offer = offer_of(me)
        t = next((t for t in offer["templates"] if t["name"] == form["template"]), offer["templates"][0])
        form["template"] = t["name"]
        sizes = [s["name"] for s in t["sizes"]]
        if form["size"] not in sizes:
            form["size"] = sizes[0]
        return {"offer": offer, "form": form, "sizes": sizes, "tpl": t}

    def _price(ctx: dict, count: int, ha: bool, dr: bool) -> list[dict]:
        """The monthly price on each contract's operator, and what it would leave under the ceiling."""
        size = next(s for s in ctx["tpl"]["sizes"] if s["name"] == ctx["form"]["size"])
        out = []
        for c in ctx["offer"]["contracts"]:
            if not c["valid_today"] or (c["role"] == "backup" and not dr):
                continue
            each = size["monthly_cny_per_instance"].get(c["provider"])
            if each is None:
                continue
            monthly = each * count
            out.append({**c, "monthly": monthly, "left_after": c["left_cny_per_month"] - monthly})
        return out

    @app.get("/portal/new", include_in_schema=False)
    def new_form(request: Request):
        sess, me = session(request)
        if not me:
            return to_login(request, True)
        if not may(me, "request.submit", me.department):
            return page(request, "", sess, me, status=403, msg=LABELS[lang_of(request, sess)]["refused"])
        form = {"title": "", "name": "", "template": "", "size": "", "count": 1, "ha": False, "dr": False}
        return page(request, _NEW, sess, me, price=None, **_new_ctx(me, form))

    @app.post("/portal/new", include_in_schema=False)
    def new_post(request: Request, csrf: str = Form(""), title: str = Form(""), name: str = Form(""),
                 template: str = Form(""), size: str = Form(""), count: str = Form("1"), ha: str = Form(""),
                 dr: str = Form(""), do: str = Form("preview")):
        sess, me = session(request)
        if not me:
            return to_login(request, True)
        check_csrf(sess, csrf)
        n = int(count) if count.isdigit() and 0 < int(count) <= 10000 else 1
        form = {"title": title[:200], "name": name[:63], "template": template, "size": size, "count": n,
                "ha": bool(ha), "dr": bool(dr)}
        ctx = _new_ctx(me, form)
        if do != "submit":
            return page(request, _NEW, sess, me, price=_price(ctx, n, bool(ha), bool(dr)), **ctx)
        doc = {"department": me.department, "title": form["title"], "requests": [
            {"name": form["name"], "template": form["template"], "size": form["size"], "count": n,
             "ha": form["ha"], "dr": form["dr"]}]}
        try:
            rec = uc.submit(deps_of(), me, doc, "portal")
        except InputInvalid as exc:
            return page(request, _NEW, sess, me, status=400, msg="; ".join(str(p) for p in exc.problems),
                        price=_price(ctx, n, bool(ha), bool(dr)), **ctx)
        return RedirectResponse(f"/portal/requests/{rec.id}", status_code=303)

    def _actions(me: Identity, r) -> list[str]:
        return [a for a, act in ACTION_OF.items() if r.state in ACTION_STATES[a] and may(me, act, r.department)]

    @app.get("/portal/requests/{request_id}", include_in_schema=False)
    def show(request: Request, request_id: int):
        sess, me = session(request)
        if not me:
            return to_login(request, True)
        r = uc.show(deps_of(), me, request_id)
        return page(request, _SHOW, sess, me, r=uc.record_dict(r), actions=_actions(me, r))

    @app.post("/portal/requests/{request_id}/{action}", include_in_schema=False)
    def act(request: Request, request_id: int, action: str, csrf: str = Form(""), reason: str = Form("")):
        sess, me = session(request)
        if not me:
            return to_login(request, True)
        check_csrf(sess, csrf)
        d = deps_of()
        steps = {"endorse": lambda: uc.endorse(d, me, request_id),
                 "review": lambda: uc.review(d, me, request_id)[0],
                 "approve": lambda: uc.approve(d, me, request_id, reason),
                 "reject": lambda: uc.reject(d, me, request_id, reason),
                 "configure": lambda: uc.configure(d, me, request_id, "sdk"),
                 "publish": lambda: uc.publish(d, me, request_id, with_catalog_probes=True)}
        if action not in steps:
            raise NotPermitted("unknown action", hide_existence=True)
        try:
            steps[action]()
        except (lc.TransitionRefused, lc.CapacityExhausted) as exc:
            r = uc.show(d, me, request_id)
            return page(request, _SHOW, sess, me, status=409, msg=str(exc).splitlines()[0],
                        r=uc.record_dict(r), actions=_actions(me, r))
        return RedirectResponse(f"/portal/requests/{request_id}", status_code=303)

    @app.exception_handler(NotPermitted)
    async def _refused(request: Request, exc: NotPermitted):
        from api.app import _status_of

        status, body = _status_of(exc)
        if request.url.path.startswith("/portal/"):
            sess = sessions.read(request.cookies.get(COOKIE))
            lang = lang_of(request, sess)
            return HTMLResponse(f"<!doctype html><title>{status}</title><p id='msg'>{LABELS[lang]['refused']}</p>",
                                status_code=status)
        from fastapi.responses import JSONResponse

        return JSONResponse(body, status_code=status)

    _ = YunshangError
