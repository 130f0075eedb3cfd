"""A tiny SMTP server (RFC 5321 subset: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, QUIT)
on a free local port, keeping what it received, for email delivery tests."""

from __future__ import annotations

import base64
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    auth: str | None


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list[Received] = field(default_factory=list)
    reject: set[str] = field(default_factory=set)  # recipients answered with 550


def _handler(server: SmtpServer) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def reply(self, line: str) -> None:
            self.wfile.write(line.encode() + b"\r\n")

        def handle(self) -> None:
            self.reply("220 localhost test SMTP")
            sender, rcpts, auth = "", [], None
            while True:
                raw = self.rfile.readline()
                if not raw:
                    return
                line = raw.decode().rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                arg = line[len(verb) :].strip()
                if verb == "EHLO":
                    self.wfile.write(b"250-localhost\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
                elif verb == "HELO":
                    self.reply("250 localhost")
                elif verb == "AUTH":
                    auth = base64.b64decode(arg.split(" ", 1)[1]).decode()
                    self.reply("235 2.7.0 Authentication successful")
                elif verb == "MAIL":
                    sender = arg.split(":", 1)[1].strip().strip("<>").split(">")[0]
                    self.reply("250 OK")
                elif verb == "RCPT":
                    rcpt = arg.split(":", 1)[1].strip().strip("<>")
                    if rcpt in server.reject:
                        self.reply("550 no such user")
                    else:
                        rcpts.append(rcpt)
                        self.reply("250 OK")
                elif verb == "DATA":
                    self.reply("354 End data with <CR><LF>.<CR><LF>")
                    lines = []
                    while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                        lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                    server.messages.append(Received(sender, rcpts, b"".join(lines), auth))
                    self.reply("250 OK queued")
                elif verb == "RSET":
                    sender, rcpts = "", []
                    self.reply("250 OK")
                elif verb == "NOOP":
                    self.reply("250 OK")
                elif verb == "QUIT":
                    self.reply("221 Bye")
                    return
                else:
                    self.reply("502 not implemented")

    return Handler


class _Threaded(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_smtp() -> tuple[SmtpServer, _Threaded]:
    state = SmtpServer("127.0.0.1", 0)
    tcp = _Threaded(("127.0.0.1", 0), _handler(state))
    state.port = tcp.server_address[1]
    threading.Thread(target=tcp.serve_forever, daemon=True).start()
    return state, tcp
