# A check-mapping plugin in Python: Nomad `http` checks of a plain absolute
# path, mapped as the connector's built-in `http` mapping maps them (GET,
# HTTP/1.1, Nomad's User-Agent, statuses 200-399, the check's timing with
# rise 1 / fall 1). Build it with componentize-py (docs/plugin-guide.md).

import re

import wit_world
from componentize_py_types import Err
from wit_world.imports import types as t

USER_AGENT = "Nomad/2.0.0 (+https://www.nomadproject.io/; go1.26.6)"
PLAIN_PATH = re.compile(r"^/[A-Za-z0-9/._~-]*$")


def millis(ms):
    return min(ms, 4294967295) if ms > 0 else None


def count(value, key):
    if not re.fullmatch(r"[1-9][0-9]{0,5}", value):
        raise Err(f"setting '{key}' must be a count from 1, got '{value}'")
    return int(value)


class WitWorld(wit_world.WitWorld):
    def info(self):
        return t.PluginInfo(name="py-http", version="0.1.0", check_types=["http"])

    def map_check(self, service, check, settings):
        rise = fall = None
        status = "200-399"
        for key, value in settings:
            if key == "rise":
                rise = count(value, key)
            elif key == "fall":
                fall = count(value, key)
            elif key == "expect-status":
                status = value
            else:
                raise Err(f"unknown setting '{key}' (known: expect-status, fall, rise)")
        if not PLAIN_PATH.match(check.path):
            raise Err(f"check path '{check.path}' is not a plain absolute path")
        http = t.HttpCheck(
            method=check.method or "GET",
            uri=check.path,
            version="HTTP/1.1",
            headers=[("User-Agent", USER_AGENT)],
            body="",
            default_host=True,
            expect=[t.HttpExpect(negate=False, matcher=t.HttpMatch.STATUS, pattern=status)],
        )
        server = t.ServerCheck(
            enabled=True,
            inter_ms=millis(check.interval_ms),
            fastinter_ms=None,
            downinter_ms=None,
            rise=rise or max(check.success_before_passing, 1),
            fall=fall or max(check.failures_before_critical, 1),
            port=check.check_port,
            addr=None,
            ssl=False,
            verify=t.TlsVerify.REQUIRED,
            sni=None,
            proto=None,
            alpn=None,
            agent=None,
        )
        return t.CheckPlan(
            backend=t.BackendCheck_Http(http),
            timeout_check_ms=millis(check.timeout_ms),
            server=server,
            notes=[],
            warnings=[],
        )
