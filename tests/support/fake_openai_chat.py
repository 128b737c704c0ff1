"""A local OpenAI-compatible chat-completions server for tests (real HTTP, real SSE stream).

It stands in for a remote paid model: each request is answered by a script the test gives
(a function from the request's messages to a list of streamed "moves": text pieces or tool
calls), streamed exactly as the chat-completions API streams (``data: {chunk}`` lines,
``data: [DONE]``). Requests are recorded so tests can check what the client sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Move = str | dict[str, Any]
"""A text piece, or a tool call ``{"name": ..., "arguments": {...}}``."""
Script = Callable[[list[dict[str, Any]]], list[Move]]


@dataclass
class FakeChatServer:
    script: Script
    delay_s: float = 0.0
    status: int = 200
    delay_for: Callable[[dict[str, Any]], float] | None = None
    """Per-request delay before answering (from the request body); overrides ``delay_s``."""
    status_for: Callable[[dict[str, Any]], int] | None = None
    """Per-request HTTP status (from the request body); overrides ``status``."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    base_url: str = ""
    in_flight: int = 0
    max_in_flight: int = 0
    """The most requests that were being answered at once."""
    cancelled: int = 0
    """Requests whose client went away before the answer was complete."""

    async def start(self) -> FakeChatServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        # A client that goes away (a call called off) cancels its handler, as a real server
        # stops generating for it.
        self.runner = web.AppRunner(app, handler_cancellation=True)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, body)
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        delay = self.delay_for(body) if self.delay_for is not None else self.delay_s
        if delay:
            await asyncio.sleep(delay)
        status = self.status_for(body) if self.status_for is not None else self.status
        if status != 200:
            return web.json_response(
                {"error": {"message": "the model is overloaded", "type": "server_error"}},
                status=status,
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        moves = self.script(body["messages"])
        calls = 0
        for move in moves:
            if isinstance(move, str):
                delta: dict[str, Any] = {"content": move}
            else:
                args = json.dumps(move["arguments"])
                delta = {
                    "tool_calls": [
                        {
                            "index": calls,
                            "id": f"call_{calls}",
                            "type": "function",
                            "function": {"name": move["name"], "arguments": ""},
                        }
                    ]
                }
                await resp.write(_sse(body, delta))
                # Arguments arrive in pieces, as real models stream them.
                half = len(args) // 2
                for piece in (args[:half], args[half:]):
                    await resp.write(
                        _sse(
                            body,
                            {"tool_calls": [{"index": calls, "function": {"arguments": piece}}]},
                        )
                    )
                calls += 1
                continue
            await resp.write(_sse(body, delta))
        finish = "tool_calls" if calls else "stop"
        await resp.write(_sse(body, {}, finish))
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _sse(body: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "test"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()
