#!/usr/bin/env python3
"""Smart-HTTP git server for the cicd-agents test environment (Python 3 stdlib only).

Serves every bare repository under --root through `git http-backend` (CGI) on 127.0.0.1.
Every request needs HTTP basic auth whose password equals the token in --token-file (any
user name); anything else gets 401 with `WWW-Authenticate: Basic realm="git"`.

Request bodies may be sent with Content-Length or `Transfer-Encoding: chunked` (git uses
chunked for large pushes); gzip bodies are passed through to http-backend, which inflates
them itself (HTTP_CONTENT_ENCODING). CGI output is streamed back as it comes.
"""

import argparse
import base64
import hmac
import http.server
import os
import subprocess
import sys
import threading
import urllib.parse

COPY_SIZE = 64 * 1024


class BadRequest(Exception):
    pass


class GitHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cicd-agents-git-http/1"
    # TCP_NODELAY, as real servers set it: without it the last small write of a chunked
    # response (the terminating chunk) waits for the client's delayed ACK, ~40 ms per
    # response on Linux, which made every git POST here 40 ms slower than on a real forge.
    disable_nagle_algorithm = True

    # -- auth -----------------------------------------------------------------

    def auth_user(self):
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep:
            return None
        if not hmac.compare_digest(password.encode("utf-8"), self.server.token.encode("utf-8")):
            return None
        return user or "git"

    def send_unauthorized(self):
        body = b"authentication required\n"
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="git"')
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        if self.has_body():
            # The body was not read: the connection cannot be reused.
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def handle_expect_100(self):
        if self.auth_user() is None:
            self.send_unauthorized()
            return False
        return super().handle_expect_100()

    # -- request body ---------------------------------------------------------

    def is_chunked(self):
        te = self.headers.get("Transfer-Encoding", "")
        return "chunked" in [t.strip().lower() for t in te.split(",")]

    def content_length(self):
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            n = int(value)
        except ValueError:
            raise BadRequest("bad Content-Length")
        if n < 0:
            raise BadRequest("bad Content-Length")
        return n

    def has_body(self):
        if self.is_chunked():
            return True
        try:
            return (self.content_length() or 0) > 0
        except BadRequest:
            return True

    def body_chunks(self):
        """Yields the request body, decoding chunked transfer encoding."""
        rfile = self.rfile
        if self.is_chunked():
            while True:
                line = rfile.readline(1024)
                if not line.endswith(b"\n"):
                    raise BadRequest("truncated chunk header")
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise BadRequest("bad chunk size")
                if size == 0:
                    # trailers until an empty line
                    while True:
                        trailer = rfile.readline(8192)
                        if not trailer:
                            raise BadRequest("truncated trailers")
                        if trailer in (b"\r\n", b"\n"):
                            return
                left = size
                while left > 0:
                    data = rfile.read(min(left, COPY_SIZE))
                    if not data:
                        raise BadRequest("truncated chunk")
                    left -= len(data)
                    yield data
                if rfile.readline(1024) not in (b"\r\n", b"\n"):
                    raise BadRequest("missing chunk terminator")
        else:
            left = self.content_length() or 0
            while left > 0:
                data = rfile.read(min(left, COPY_SIZE))
                if not data:
                    raise BadRequest("truncated body")
                left -= len(data)
                yield data

    # -- CGI --------------------------------------------------------------------

    def do_GET(self):
        self.run_backend()

    def do_POST(self):
        self.run_backend()

    def run_backend(self):
        user = self.auth_user()
        if user is None:
            self.send_unauthorized()
            return
        try:
            length = None if self.is_chunked() else self.content_length()
        except BadRequest as e:
            self.send_error(400, str(e))
            self.close_connection = True
            return

        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": self.server_version,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.server.server_address[1]),
            "GIT_PROJECT_ROOT": self.server.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": urllib.parse.unquote(path),
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "REMOTE_USER": user,
            "REMOTE_ADDR": self.client_address[0],
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            # Repositories are created by whoever runs the tests; do not trip over ownership.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "safe.directory",
            "GIT_CONFIG_VALUE_0": "*",
        }
        if "HOME" in os.environ:
            env["HOME"] = os.environ["HOME"]
        if length is not None:
            env["CONTENT_LENGTH"] = str(length)
        encoding = self.headers.get("Content-Encoding")
        if encoding:
            env["HTTP_CONTENT_ENCODING"] = encoding
        protocol = self.headers.get("Git-Protocol")
        if protocol:
            env["HTTP_GIT_PROTOCOL"] = protocol
            env["GIT_PROTOCOL"] = protocol

        proc = subprocess.Popen(
            [self.server.git, "http-backend"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
        )
        body_error = []

        def feed():
            broken = False
            try:
                for data in self.body_chunks():
                    if broken:
                        continue  # keep draining so the connection stays in sync
                    try:
                        proc.stdin.write(data)
                    except (BrokenPipeError, OSError):
                        broken = True
            except (BadRequest, OSError) as e:
                body_error.append(e)
                proc.kill()
            finally:
                try:
                    proc.stdin.close()
                except OSError:
                    pass

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        try:
            self.relay_cgi_output(proc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            proc.kill()
        finally:
            feeder.join()
            proc.stdout.close()
            proc.wait()
        if body_error:
            self.log_error("bad request body: %s", body_error[0])
            self.close_connection = True

    def relay_cgi_output(self, proc):
        out = proc.stdout
        status = "200 OK"
        headers = []
        length = None
        pending = b""
        # headers
        while True:
            nl = pending.find(b"\n")
            if nl < 0:
                data = out.read(COPY_SIZE)
                if not data:
                    self.send_error(502, "git http-backend ended without headers")
                    self.close_connection = True
                    return
                pending += data
                if len(pending) > 1 << 20:
                    self.send_error(502, "git http-backend headers too large")
                    self.close_connection = True
                    return
                continue
            line = pending[:nl].rstrip(b"\r").decode("latin-1")
            pending = pending[nl + 1:]
            if line == "":
                break
            name, _, value = line.partition(":")
            name, value = name.strip(), value.strip()
            lname = name.lower()
            if lname == "status":
                status = value
            elif lname == "content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif lname in ("transfer-encoding", "connection"):
                pass
            else:
                headers.append((name, value))

        code, _, reason = status.partition(" ")
        try:
            code_num = int(code)
        except ValueError:
            code_num, reason = 502, "Bad Gateway"
        self.send_response(code_num, reason or None)
        for name, value in headers:
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
            self.end_headers()
            left = length
            if pending:
                self.wfile.write(pending[:left])
                left -= len(pending[:left])
            while left > 0:
                data = out.read(min(left, COPY_SIZE))
                if not data:
                    self.close_connection = True
                    return
                self.wfile.write(data)
                left -= len(data)
            return

        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        data = pending
        while True:
            if data:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            data = out.read(COPY_SIZE)
            if not data:
                break
        self.wfile.write(b"0\r\n\r\n")


class GitServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, help="directory of bare repositories")
    parser.add_argument("--port", type=int, default=8418)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--git", default="git", help="git executable")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args()

    with open(args.token_file, encoding="utf-8") as f:
        token = f.read().strip()
    if not token:
        sys.exit("empty token in %s" % args.token_file)

    if args.quiet:
        GitHandler.log_message = lambda *a, **k: None
    server = GitServer((args.bind, args.port), GitHandler)
    server.root = os.path.abspath(args.root)
    server.token = token
    server.git = args.git
    sys.stderr.write("git-http-server: serving %s on http://%s:%d\n" % (server.root, args.bind, args.port))
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
