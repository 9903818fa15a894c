#!/usr/bin/python3
"""An ext_authz gRPC authorizer on grpcio (Debian python3-grpcio), speaking
envoy.service.auth.v3.Authorization/Check from a proto compiled here with grpc_tools (Debian
python3-grpc-tools), an independent gRPC stack. "x-ext-authz: allow" is allowed (x-user set
upstream), any other request denied (PERMISSION_DENIED, HTTP 403 or x-deny-status, a header and
a body). A path ending in /slow answers after 3 s. The check's body (body, or raw_body with
packAsBytes) is reported back as x-seen-* headers (SHA-256, length, size, which field,
x-envoy-auth-partial-body); a body holding "forbidden" is denied.
Usage: ext-authz-grpc.py PROTO_ROOT OUT_DIR HOST PORT"""
import hashlib
import sys
import time
from concurrent import futures

from grpc_tools import protoc

proto_root, out, host, port = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if protoc.main(["protoc", "-I" + proto_root, "--python_out=" + out, "--grpc_python_out=" + out,
                "envoy/service/auth/v3/ext_authz.proto"]) != 0:
    sys.exit("protoc failed")
sys.path.insert(0, out)
import grpc  # noqa: E402
from envoy.service.auth.v3 import ext_authz_pb2 as pb  # noqa: E402
from envoy.service.auth.v3 import ext_authz_pb2_grpc as rpc  # noqa: E402


class Authorizer(rpc.AuthorizationServicer):
    def Check(self, request, context):
        http = request.attributes.request.http
        if http.path.endswith("/slow"):
            time.sleep(3)
        r = pb.CheckResponse()
        checked = http.raw_body if http.raw_body else http.body.encode("utf-8")
        seen = {"x-seen-body-sha256": hashlib.sha256(checked).hexdigest(), "x-seen-body-length": str(len(checked)),
                "x-seen-size": str(http.size), "x-seen-raw": "1" if http.raw_body else "0",
                "x-seen-partial": http.headers.get("x-envoy-auth-partial-body", "-")}
        if http.headers.get("x-ext-authz") == "allow" and b"forbidden" not in checked:
            r.status.code = 0
            h = r.ok_response.headers.add()
            h.header.key, h.header.value = "x-user", "alice-grpc"
            h = r.ok_response.headers.add()
            h.header.key, h.header.value = "x-seen-principal", request.attributes.source.principal
            h = r.ok_response.headers.add()
            h.header.key, h.header.value = "x-seen-method-path", http.method + " " + http.path
            for k, v in seen.items():
                h = r.ok_response.headers.add()
                h.header.key, h.header.value = k, v
            r.ok_response.headers_to_remove.append("x-drop-me")
            h = r.ok_response.response_headers_to_add.add()
            h.header.key, h.header.value = "x-ext-authz-check-result", "allowed"
            return r
        r.status.code = 7
        r.denied_response.status.code = int(http.headers.get("x-deny-status", "403"))
        h = r.denied_response.headers.add()
        h.header.key, h.header.value = "x-ext-authz-check-result", "denied"
        r.denied_response.body = "denied by the gRPC authorizer\n"
        return r


server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
rpc.add_AuthorizationServicer_to_server(Authorizer(), server)
server.add_insecure_port(host + ":" + port)
server.start()
print("listening", flush=True)
server.wait_for_termination()
