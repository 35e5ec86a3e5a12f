-- wrk script: an unpaid POST of one getBalance call to a paid route, which must be answered
-- with a 402 challenge; any other status is counted and reported as "not402: N".
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"params":["vines1vzrYbzLMRdu58ou5XTby4qAqVRLmqo36NKPTg"]}'

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not402 = 0 end
function response(status, headers, body)
  if status ~= 402 then not402 = not402 + 1 end
end
function done(summary, latency, requests)
  local n = 0
  for _, t in ipairs(threads) do n = n + t:get("not402") end
  io.write(string.format("not402: %d\n", n))
end
