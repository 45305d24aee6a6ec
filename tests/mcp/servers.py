"""MCP servers for the gateway tests, built with the official `mcp` SDK (v2: `MCPServer`,
formerly FastMCP). One script, the transport chosen by argv:

    servers.py http PORT NAME [--noop N] [--page-size N]    Streamable HTTP at /mcp
    servers.py sse PORT NAME [--noop N] [--page-size N]     legacy SSE: GET /sse, POST /messages/
    servers.py stdio NAME [--noop N] [--page-size N]        stdio (newline-delimited JSON-RPC)

HTTP servers also answer GET /healthz. Every server offers the same things, named so a test
can tell which server answered:

- tools: echo(text) -> "NAME: text"; whoami() -> "NAME pid=PID"; slow_count(n) sends n progress
  and n logging notifications, then returns "NAME: counted n"; ask_llm(question) asks the
  client to sample (sampling/createMessage) and returns the sampled text unchanged; grow()
  adds a tool "grown_K" and sends notifications/tools/list_changed; fail() returns a tool
  error (isError: true); with --noop N also noop_0 .. noop_{N-1};
- prompt greet(name);
- resources: NAME://readme (text) and the template NAME://items/{id}.

--page-size N makes tools/list paginate (N tools a page, nextCursor is the next offset), which
MCPServer does not do by itself.
"""

import argparse
import os
import sys
import warnings

import anyio
import uvicorn
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, ListToolsResult, PaginatedRequestParams, SamplingMessage, TextContent
from starlette.requests import Request
from starlette.responses import PlainTextResponse

# Logging and sampling are deprecated as of protocol 2026-07-28 but are what we test
# (they work on every handshake-era version, which is what a gateway negotiates).
warnings.simplefilter("ignore")

# The SDK turns on DNS-rebinding protection (a Host/Origin allow-list) for 127.0.0.1; a
# gateway may well send its own Host, which is not what these tests are about.
NO_REBINDING_CHECK = TransportSecuritySettings(enable_dns_rebinding_protection=False)


def build(server, noop=0, page_size=0):
    mcp = MCPServer(server, instructions=f"test server {server}", version="1.0.0", log_level="WARNING")

    @mcp.tool()
    def echo(text: str) -> str:
        """Echo the text back, prefixed with the server's name."""
        return f"{server}: {text}"

    @mcp.tool()
    def whoami() -> str:
        """The server's name and process id."""
        return f"{server} pid={os.getpid()}"

    @mcp.tool()
    async def slow_count(n: int, ctx: Context) -> str:
        """Count to n, reporting progress and logging each step."""
        for i in range(1, n + 1):
            await ctx.report_progress(i, n, f"{server} step {i}")
            await ctx.info(f"{server} log {i}")
            await anyio.sleep(0.02)
        return f"{server}: counted {n}"

    @mcp.tool()
    async def ask_llm(question: str, ctx: Context) -> str:
        """Ask the client's LLM (sampling) and return its answer."""
        result = await ctx.session.create_message(
            messages=[SamplingMessage(role="user", content=TextContent(type="text", text=question))],
            max_tokens=100,
            related_request_id=ctx.request_id,
        )
        return result.content.text

    grown = []

    @mcp.tool()
    async def grow(ctx: Context) -> str:
        """Add a tool grown_K and tell the client that the tool list changed."""
        tool = f"grown_{len(grown)}"
        grown.append(tool)
        mcp.add_tool(lambda: f"{server}: {tool}", name=tool, description="A tool added at run time.")
        await ctx.session.send_tool_list_changed()
        return tool

    @mcp.tool()
    def fail() -> str:
        """Always fails (a tool error, not a protocol error)."""
        raise ValueError(f"{server} failed on purpose")

    for i in range(noop):
        mcp.add_tool(lambda i=i: f"{server}: noop {i}", name=f"noop_{i}", description=f"Does nothing ({i}).")

    @mcp.prompt()
    def greet(name: str) -> str:
        """Greet someone."""
        return f"Hello {name}, from {server}"

    @mcp.resource(f"{server}://readme", mime_type="text/plain")
    def readme() -> str:
        """The readme."""
        return f"{server} readme"

    @mcp.resource(f"{server}://items/{{id}}", mime_type="text/plain")
    def item(id: str) -> str:
        """One item."""
        return f"{server} item {id}"

    if page_size:
        async def list_tools_paged(ctx, params: PaginatedRequestParams) -> ListToolsResult:
            tools = await mcp.list_tools()
            try:
                start = int(params.cursor or 0)
            except ValueError:
                raise MCPError(INVALID_PARAMS, "bad cursor") from None
            end = start + page_size
            return ListToolsResult(tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None)

        mcp._lowlevel_server.add_request_handler("tools/list", PaginatedRequestParams, list_tools_paged)

    @mcp.custom_route("/healthz", methods=["GET"])
    async def healthz(_: Request):
        return PlainTextResponse("ok")

    return mcp


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("transport", choices=["http", "sse", "stdio"])
    p.add_argument("rest", nargs="+")
    p.add_argument("--noop", type=int, default=0)
    p.add_argument("--page-size", type=int, default=0)
    a = p.parse_args(argv)
    if a.transport == "stdio":
        (name,) = a.rest
        build(name, a.noop, a.page_size).run("stdio")
        return
    port, name = a.rest
    mcp = build(name, a.noop, a.page_size)
    if a.transport == "http":
        app = mcp.streamable_http_app(streamable_http_path="/mcp", transport_security=NO_REBINDING_CHECK)
    else:
        app = mcp.sse_app(sse_path="/sse", message_path="/messages/", transport_security=NO_REBINDING_CHECK)
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1:])
