-- wrk script of benches/load/run.sh and benches/load/headers.sh: every request is the same MCP
-- `tools/call whoami` (stateless Streamable HTTP, JSON response), with
-- `Authorization: Bearer $BENCH_TOKEN` when that variable is set and non-empty.
--
-- BENCH_MCP_VERSION picks the protocol revision (default 2025-06-18): 2025-06-18 or
-- 2025-11-25 send the message alone (the guard reads the body to find the tool); 2026-07-28
-- adds the per-request `_meta` and the `Mcp-Method` / `Mcp-Name` headers that revision requires.
local version = os.getenv("BENCH_MCP_VERSION")
if version == nil or version == "" then
  version = "2025-06-18"
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = version
if version >= "2026-07-28" then
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{},'
    .. '"_meta":{"io.modelcontextprotocol/protocolVersion":"' .. version .. '",'
    .. '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"1"},'
    .. '"io.modelcontextprotocol/clientCapabilities":{}}}}'
  wrk.headers["Mcp-Method"] = "tools/call"
  wrk.headers["Mcp-Name"] = "whoami"
else
  wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
end
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
