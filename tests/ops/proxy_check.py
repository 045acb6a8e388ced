"""What a TLS reverse proxy in front of picochat must get right, checked from the
client side. Used by nginx-proxy.sh and caddy-proxy.sh; the shell script then
reads picochat's log for the X-Forwarded-For part.

Usage: proxy_check.py NAME TLS_PORT PLAIN_PORT
  - plain HTTP on PLAIN_PORT redirects to https
  - the page over TLS, gzip, two requests on one keep-alive connection
  - chat between two users over wss through the upgrade; the first sends a
    forged X-Forwarded-For (203.0.113.7) that must not be trusted
  - the origin check accepts the proxied origin and refuses a foreign one (403)
"""
import asyncio
import http.client
import json
import ssl
import sys

import websockets

name, tls_port, plain_port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
origin = f"https://127.0.0.1:{tls_port}"

c = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=5)
c.request("GET", "/")
r = c.getresponse()
assert r.status in (301, 302, 308), (r.status, r.getheaders())
assert r.getheader("Location", "").startswith("https://"), r.getheaders()

c = http.client.HTTPSConnection("127.0.0.1", tls_port, context=ctx, timeout=5)
for path in ("/", "/app.js"):
    c.request("GET", path, headers={"Accept-Encoding": "gzip"})
    r = c.getresponse()
    body = r.read()
    assert r.status == 200, (path, r.status)
    assert r.getheader("Content-Encoding") == "gzip", r.getheaders()
assert r.getheader("Connection", "keep-alive").lower() != "close"
first = c.sock
c.request("GET", "/")
c.getresponse().read()
assert c.sock is first, "the proxy closed the keep-alive connection"


async def chat():
    url = f"wss://127.0.0.1:{tls_port}/ws"
    forged = {"X-Forwarded-For": "203.0.113.7"}
    async with websockets.connect(url, ssl=ctx, origin=origin, additional_headers=forged) as a, \
            websockets.connect(url, ssl=ctx, origin=origin) as b:
        await a.send(json.dumps({"type": "join", "username": "via-proxy"}))
        w = json.loads(await a.recv())
        assert w["type"] == "welcome", w
        text = f"through {name}"
        await b.send(json.dumps({"username": "b", "email": "b@example.org", "message": text}))
        for ws in (a, b):
            while True:
                m = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if m["type"] == "message":
                    assert m["message"] == text, m
                    break
    try:
        async with websockets.connect(url, ssl=ctx, origin="https://evil.example"):
            raise SystemExit(f"foreign origin was accepted through {name}")
    except websockets.exceptions.InvalidStatus as e:
        assert e.response.status_code == 403, e


asyncio.run(chat())
print(f"{name}: redirect to https, page over TLS, keep-alive, gzip, chat over wss, origin check: ok")
