-- wrk script of benches/load/run.sh: every request is the same MCP `tools/call whoami`
-- (stateless Streamable HTTP, JSON response), with `Authorization: Bearer $BENCH_TOKEN` when
-- that variable is set and non-empty.
wrk.method = "POST"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
local token = os.getenv("BENCH_TOKEN")
if token ~= nil and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
