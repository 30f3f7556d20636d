#!/usr/bin/python3
"""A registry token server for the tests, as docker/distribution's token auth specifies
(docs/spec/auth/token.md): GET REALM?service=S&scope=repository:NAME:ACTIONS answers
{"token": JWT, "access_token": JWT, "expires_in": N} signed with a key whose certificate the
registry trusts (auth.token.rootcertbundle), the certificate in the JWT's x5c header.

An OAuth2 refresh token (POST REALM, grant_type=refresh_token, distribution's spec/auth/oauth.md)
is exchanged the same way: USERS lines "refresh:TOKEN:user" name the user a refresh token stands for.

Who gets what, as a site's token service would decide:
  - HTTP basic credentials from USERS (user:password lines), or a known refresh token: every
    action asked for;
  - anonymous: "pull" on repositories under public/, nothing else;
  - wrong credentials: 401 with a Basic challenge, nothing granted.
Every request is logged as one JSON line (user, scopes asked, access granted) to LOG, so tests can
check what a client asked for. Listens on 127.0.0.1 only, over TLS.

usage: token-server.py CERT KEY SIGNING_CERT SIGNING_KEY ISSUER SERVICE USERS LOG PORT_FILE
"""
import base64
import http.server
import json
import os
import socketserver
import ssl
import sys
import time
import urllib.parse
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

(cert, key, signing_cert_file, signing_key_file, issuer, service, users_file, log_file,
 port_file) = sys.argv[1:10]

with open(signing_key_file, "rb") as f:
    signing_key = serialization.load_pem_private_key(f.read(), password=None)
with open(signing_cert_file, "rb") as f:
    signing_cert = x509.load_pem_x509_certificate(f.read())
x5c = [base64.b64encode(signing_cert.public_bytes(serialization.Encoding.DER)).decode()]
users = {}
refresh_tokens = {}
with open(users_file) as f:
    for line in f:
        line = line.rstrip("\n")
        if line.startswith("refresh:"):
            _, token, name = line.split(":", 2)
            refresh_tokens[token] = name
        elif ":" in line:
            name, password = line.split(":", 1)
            users[name] = password


class TokenHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # the JSON log below is the record
        pass

    def user(self):
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None, True
        try:
            name, password = base64.b64decode(header[6:]).decode().split(":", 1)
        except (ValueError, UnicodeDecodeError):
            return None, False
        return (name, True) if users.get(name) == password else (None, False)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        user, credentials_ok = self.user()
        self.answer(url.path, "GET", user, credentials_ok, query.get("service", [""])[0],
                    query.get("scope", []))

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        field = lambda name: form.get(name, [""])[0]
        user = None
        credentials_ok = field("grant_type") == "refresh_token" and field("client_id") != ""
        if credentials_ok:
            user = refresh_tokens.get(field("refresh_token"))
            credentials_ok = user is not None
        self.answer(url.path, "POST", user, credentials_ok, field("service"),
                    [s for s in field("scope").split(" ") if s])

    def answer(self, path, method, user, credentials_ok, service_asked, scopes):
        record = {"path": path, "method": method, "user": user, "service": service_asked,
                  "scopes": scopes, "credentials_ok": credentials_ok}
        if path != "/token" or not credentials_ok:
            record["status"] = 404 if path != "/token" else 401
            self.log(record)
            self.send_response(record["status"])
            if record["status"] == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="kbatch-test-token"')
            body = json.dumps({"details": "invalid credentials"}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            asked = [a for a in actions.split(",") if a]
            granted = asked if user else [a for a in asked if a == "pull" and name.startswith("public/")]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {"iss": issuer, "sub": user or "", "aud": service, "iat": now, "nbf": now - 5,
                  "exp": now + 300, "jti": uuid.uuid4().hex, "access": access}
        token = jwt.encode(claims, signing_key, algorithm="RS256", headers={"x5c": x5c})
        record["status"] = 200
        record["granted"] = access
        self.log(record)
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300,
                           "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log(self, record):
        with open(log_file, "a") as f:
            f.write(json.dumps(record) + "\n")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


server = Server(("127.0.0.1", 0), TokenHandler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
