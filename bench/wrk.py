"""wrk, the load generator of bin/bench: a Lua script per scenario that rotates the requests
(tenants, tokens, paths, bodies) and counts every status, and the parsing of wrk's report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: installing it (apt-get install -y wrk)", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed (Debian/Ubuntu: apt-get install wrk)")
    return found


def _lua_str(s: str) -> str:
    level = "=="
    while f"]{level}]" in s:
        level += "="
    return f"[{level}[{s}]{level}]"


@dataclass
class Item:
    method: str
    path: str
    tenant: str
    token: str = ""
    body: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # more request headers (If-None-Match...)


def write_lua(items: list[Item], path: Path) -> None:
    """A wrk script that sends `items` in order (wrapping around), each with its tenant,
    token and body. Header sets and bodies are shared tables, so the script stays small."""
    headers: dict[tuple[str, str, bool, tuple[tuple[str, str], ...]], int] = {}
    bodies: dict[str, int] = {}
    rows = []
    for it in items:
        hkey = (it.tenant, it.token, bool(it.body), it.headers)
        h = headers.setdefault(hkey, len(headers) + 1)
        b = bodies.setdefault(it.body, len(bodies) + 1) if it.body else 0
        rows.append(f'{{"{it.method}",{_lua_str(it.path)},{h},{b}}}')
    hl = []
    for (tenant, token, has_body, more), _ in sorted(headers.items(), key=lambda kv: kv[1]):
        parts = [f'["X-Tenant"]={_lua_str(tenant)}'] if tenant else []
        if token:
            parts.append(f'["Authorization"]={_lua_str("Bearer " + token)}')
        if has_body:
            parts.append('["Content-Type"]="application/json"')
        # "[ [[...]] ]": without the spaces "[[" would open a long string
        parts.extend(f"[ {_lua_str(name)} ]={_lua_str(value)}" for name, value in more)
        hl.append("{" + ",".join(parts) + "}")
    bl = [_lua_str(b) for b, _ in sorted(bodies.items(), key=lambda kv: kv[1])]
    path.write_text(
        "local H = {\n" + ",\n".join(hl) + "\n}\n"
        "local B = {\n" + ",\n".join(bl) + "\n}\n"
        "local R = {\n" + ",\n".join(rows) + "\n}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i + 1\n"
        "  if i > #R then i = 1 end\n"
        "  local r = R[i]\n"
        "  local body = nil\n"
        "  if r[4] > 0 then body = B[r[4]] end\n"
        "  return wrk.format(r[1], r[2], H[r[3]], body)\n"
        "end\n"
        # every status counted, and the start of the first error's body, for the report
        "counts = {}\n"
        "first_error = ''\n"
        "response = function(status, headers, body)\n"
        "  counts[status] = (counts[status] or 0) + 1\n"
        "  if status >= 300 and status ~= 304 and first_error == '' then\n"
        "    first_error = status .. ' ' .. string.sub(body or '', 1, 300)\n"
        "  end\n"
        "end\n"
        "local threads = {}\n"
        "setup = function(thread) table.insert(threads, thread) end\n"
        "done = function(summary, latency, requests)\n"
        "  for _, t in ipairs(threads) do\n"
        "    for k, v in pairs(t:get('counts')) do\n"
        "      io.write(string.format('STATUS %d %d\\n', k, v))\n"
        "    end\n"
        "    local e = t:get('first_error')\n"
        "    if e ~= '' then io.write('FIRST_ERROR ' .. string.gsub(e, '\\n', ' ') .. '\\n') end\n"
        "  end\n"
        "end\n")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}
_BYTES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text.strip())
    return round(float(m.group(1)) * _UNITS[m.group(2)], 2) if m else float("nan")


def parse_wrk(out: str) -> dict[str, Any]:
    res: dict[str, Any] = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None,
                           "non_2xx": 0, "socket_errors": 0}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("STATUS "):
            _, code, n = line.split()
            res.setdefault("status", {})[code] = res.get("status", {}).get(code, 0) + int(n)
        elif line.startswith("FIRST_ERROR "):
            res["first_error"] = line[len("FIRST_ERROR "):][:300]
        elif m := re.match(r"(50|99)(?:\.000)?%\s+(\S+)$", line):
            res[f"p{m.group(1)}_ms"] = _ms(m.group(2))
        elif m := re.match(r"(\d+) requests in ([\d.]+\w+)(?:, ([\d.]+)([KMGT]?B) read)?",
                           line):
            res["requests"] = int(m.group(1))
            if m.group(3) and res["requests"]:  # bytes on the wire per answer, headers too
                read = float(m.group(3)) * _BYTES[m.group(4)]
                res["bytes_per_answer"] = round(read / res["requests"])
        elif m := re.match(r"Requests/sec:\s+([\d.]+)", line):
            res["rps"] = round(float(m.group(1)), 1)
        elif m := re.match(r"Non-2xx or 3xx responses:\s+(\d+)", line):
            res["non_2xx"] = int(m.group(1))
        elif m := re.match(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                           r"timeout (\d+)", line):
            res["socket_errors"] = sum(int(x) for x in m.groups())
    return res


def run_wrk(wrk: str, url: str, seconds: float, connections: int, script: Path | None
            ) -> dict[str, Any]:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
           "--timeout", "10s"]
    if script is not None:
        cmd += ["-s", str(script)]
    proc = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return parse_wrk(proc.stdout)
