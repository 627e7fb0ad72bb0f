"""Read the exporters' data back from a real Prometheus through its HTTP query API.

A thin adapter (standard library only): it returns plain samples; the pure
cores (billing, takeover, reclaim) decide. Prometheus caps a range query at
11,000 points per series, so ``query_range`` splits long ranges into chunks.
"""
from __future__ import annotations

import datetime as dt
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from yunshang.errors import YunshangError
from yunshang.redact import redact, redact_url, url_secrets

MAX_POINTS = 10_000


class PrometheusUnavailable(YunshangError):
    """Prometheus could not be queried (down, bad URL, bad expression)."""

    exit_code = 4


@dataclass(frozen=True)
class Series:
    labels: tuple[tuple[str, str], ...]
    points: tuple[tuple[dt.datetime, float], ...]

    def label(self, name: str) -> str:
        return dict(self.labels).get(name, "")


class PrometheusClient:
    def __init__(self, base_url: str, timeout_seconds: float = 30.0):
        """``base_url`` may carry ``user:password@`` (sent as HTTP basic auth, never shown: ``self.shown``)."""
        self._secrets = url_secrets(base_url)
        self.shown = redact_url(base_url.rstrip("/"))
        self._headers: dict[str, str] = {}
        try:
            p = urllib.parse.urlsplit(base_url.rstrip("/"))
            if p.username is not None or p.password is not None:
                import base64

                cred = f"{urllib.parse.unquote(p.username or '')}:{urllib.parse.unquote(p.password or '')}"
                self._headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
                p = p._replace(netloc=p.netloc.rpartition("@")[2])
            self.base_url = urllib.parse.urlunsplit(p)
        except ValueError:
            raise PrometheusUnavailable(f"Prometheus URL {self.shown!r}: expected http(s)://HOST:PORT") from None
        self.timeout_seconds = timeout_seconds

    def _get(self, path: str, params: dict) -> dict:
        url = f"{self.base_url}{path}?{urllib.parse.urlencode(params)}"
        try:
            req = urllib.request.Request(url, headers=self._headers)
            with urllib.request.urlopen(req, timeout=self.timeout_seconds) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            try:
                detail = json.load(exc).get("error", "")
            except Exception:  # noqa: BLE001 - the body is not JSON; keep the status line
                detail = exc.reason
            raise PrometheusUnavailable(f"Prometheus {self.shown}: HTTP {exc.code}: "
                                        f"{redact(str(detail), self._secrets)[:300]}") from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            why = redact(str(getattr(exc, "reason", exc)), self._secrets)[:300]
            raise PrometheusUnavailable(f"Prometheus {self.shown} unreachable: {why}") from None
        if body.get("status") != "success":
            raise PrometheusUnavailable(f"Prometheus {self.shown}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str, at: dt.datetime | None = None) -> list[Series]:
        """Instant vector at ``at`` (default: now): one point per series."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        data = self._get("/api/v1/query", params)
        if data["resultType"] == "scalar":
            t, v = data["result"]
            return [Series((), ((_t(t), float(v)),))]
        return [Series(tuple(sorted(r["metric"].items())), ((_t(r["value"][0]), float(r["value"][1])),))
                for r in data["result"]]

    def query_range(self, expr: str, start: dt.datetime, end: dt.datetime, step_seconds: float) -> list[Series]:
        """Range query, chunked under Prometheus's points-per-series limit; series merged by labels."""
        merged: dict[tuple, list] = {}
        chunk = dt.timedelta(seconds=step_seconds * MAX_POINTS)
        t = start
        while t < end:
            u = min(end, t + chunk)
            data = self._get("/api/v1/query_range", {"query": expr, "start": f"{t.timestamp():.3f}",
                                                     "end": f"{u.timestamp():.3f}", "step": f"{step_seconds:g}"})
            for r in data["result"]:
                pts = merged.setdefault(tuple(sorted(r["metric"].items())), [])
                for ts, v in r["values"]:
                    at = _t(ts)
                    if not pts or at > pts[-1][0]:
                        pts.append((at, float(v)))
            t = u + dt.timedelta(seconds=step_seconds)
        return [Series(k, tuple(v)) for k, v in sorted(merged.items())]


    def raw_samples(self, selector: str, start: dt.datetime, end: dt.datetime,
                    chunk: dt.timedelta = dt.timedelta(days=1)) -> list[Series]:
        """The raw samples (their own timestamps, no step resampling or lookback) of a series selector
        in [start, end), read as range-vector instant queries ``selector[chunk]`` chunk by chunk."""
        merged: dict[tuple, list] = {}
        t = start
        secs = int(chunk.total_seconds())
        while t < end:
            u = min(end, t + chunk)
            data = self._get("/api/v1/query", {"query": f"{selector}[{secs}s]", "time": f"{u.timestamp():.3f}"})
            for r in data["result"]:
                pts = merged.setdefault(tuple(sorted(r["metric"].items())), [])
                for ts, v in r["values"]:
                    at = _t(ts)
                    if start <= at < end and (not pts or at > pts[-1][0]):
                        pts.append((at, float(v)))
            t = u
        return [Series(k, tuple(v)) for k, v in sorted(merged.items())]


def _t(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(ts), dt.timezone.utc)
