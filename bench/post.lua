-- wrk script: POST one JSON-RPC getBalance call.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"getBalance","params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}'
